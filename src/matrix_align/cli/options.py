"""Options shared by several commands (backend and simulation settings), defined once.

Each is an ``Annotated`` type for typer; defaults of simulation options are None so that a
YAML ``--config`` file, then SimulationConfig's own defaults, fill what the user left out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.errors import (
    BackendUnavailable,
    MatrixAlignError,
    PermanentBackendError,
    RunFailed,
    TransientBackendError,
)
from matrix_align.llm.model_files import short_names_text
from matrix_align.llm.registry import BACKENDS

BACKEND_HELP = f"Model backend: {', '.join(BACKENDS)}."


def _default(field: str) -> str:
    """The default of a SimulationConfig field, quoted in help text from its one definition."""
    from matrix_align.simulation.config import SimulationConfig

    value = SimulationConfig.model_fields[field].default
    return f"(default: {str(value).lower() if isinstance(value, bool) else value})"


SIM = "Simulation"
BACK = "Backend"


def path_value(value: str | Path) -> Path:
    """The parser of every path option: an empty value is refused, since ``Path("")`` is
    ``.`` and would put a run's files into the current folder."""
    if isinstance(value, Path):
        return value
    if not value.strip():
        raise typer.BadParameter("is empty; give a path")
    return Path(value)


Backend = Annotated[str, typer.Option("--backend", "-b", help=BACKEND_HELP, rich_help_panel=BACK)]
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model name the server serves (openai). For embedded: a bundled model's short "
        f"name, {short_names_text()}, or the path of a GGUF file (docs/models.md).",
        rich_help_panel=BACK,
    ),
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:11434/v1 (Ollama). Repeat to spread requests over several servers.",
        rich_help_panel=BACK,
    ),
]
ApiKeyEnv = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help="Environment variable holding the API key (never stored).",
        rich_help_panel=BACK,
    ),
]
Parallel = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        min=1,
        max=256,
        help="Requests served at once: llama.cpp slots (embedded; default 4) or in flight "
        "per server (openai; default 16, so a batching engine such as vLLM has work to "
        "batch).",
        rich_help_panel=BACK,
        show_default=False,
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=512,
        help="CPU threads of the embedded model (default: the physical cores this process "
        "may use). Lower it when other jobs share the machine: llama.cpp's threads wait "
        "for each other, so one slowed thread slows them all.",
        rich_help_panel=BACK,
        show_default=False,
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        "--request-timeout",
        min=1,
        help="Seconds one model request may take in all, sending to last byte (openai), "
        "before it counts as timed out and is retried.",
        rich_help_panel=BACK,
    ),
]
Rpm = Annotated[
    int | None,
    typer.Option(
        "--rpm",
        min=1,
        help="Requests per minute at most, over all calls of this process (a hosted API's "
        "limit; retries count). Default: no limit.",
        rich_help_panel=BACK,
    ),
]
Tpm = Annotated[
    int | None,
    typer.Option(
        "--tpm",
        min=1,
        help="Tokens (prompt + completion) per minute at most, over all calls of this "
        "process; a call reserves its prompt estimate plus --max-tokens until the server "
        "reports its usage. Default: no limit.",
        rich_help_panel=BACK,
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print the plan and the estimated calls, tokens (and cost, with the prices) "
        "and exit; no model is loaded or called.",
        rich_help_panel="Run",
    ),
]
PriceIn = Annotated[
    float | None,
    typer.Option(
        "--price-in",
        min=0,
        help="With --dry-run: USD per million prompt tokens, for a cost estimate.",
        rich_help_panel="Run",
    ),
]
PriceOut = Annotated[
    float | None,
    typer.Option(
        "--price-out",
        min=0,
        help="With --dry-run: USD per million completion tokens, for a cost estimate.",
        rich_help_panel="Run",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        parser=path_value,
        help="YAML file of simulation settings, or a built-in profile: paper (the paper's "
        "path: fixed plan, the authors' final prompt, memory budget 3, separate reactions); "
        "options given here win.",
        rich_help_panel=SIM,
    ),
]
Roles = Annotated[
    int | None,
    typer.Option(
        "--roles",
        help="Stakeholders besides the user " + _default("n_roles") + ".",
        rich_help_panel=SIM,
    ),
]
Steps = Annotated[
    int | None,
    typer.Option(
        "--steps",
        help="Actions in the user's plan, i.e. rounds " + _default("n_steps") + ".",
        rich_help_panel=SIM,
    ),
]
Depth = Annotated[
    int | None,
    typer.Option(
        "--depth",
        help="Reaction depth: 0 none, 1 reactions to the user, 2 also to "
        "reactions " + _default("reaction_depth") + ".",
        rich_help_panel=SIM,
    ),
]
MemoryBudget = Annotated[
    int | None,
    typer.Option(
        "--memory-budget",
        help="Events kept verbatim before the modulator summarises "
        "them " + _default("memory_budget") + ".",
        rich_help_panel=SIM,
    ),
]
AdaptivePlan = Annotated[
    bool | None,
    typer.Option(
        "--adaptive-plan/--fixed-plan",
        help="Let the user adapt each planned step to "
        "what it observed " + _default("adaptive_plan") + ".",
        rich_help_panel=SIM,
        show_default=False,
    ),
]
Strictness = Annotated[
    str | None,
    typer.Option(
        "--strictness",
        help="Modulator strictness: lenient, normal, strict " + _default("strictness") + ".",
        rich_help_panel=SIM,
    ),
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", help="Base seed " + _default("seed") + ".", rich_help_panel=SIM),
]
Temperature = Annotated[
    float | None,
    typer.Option(
        "--temperature",
        help="Sampling temperature " + _default("temperature") + ".",
        rich_help_panel=SIM,
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        help="Cap on new tokens per call " + _default("max_tokens") + ".",
        rich_help_panel=SIM,
    ),
]
FinalMaxTokens = Annotated[
    int | None,
    typer.Option(
        "--final-max-tokens",
        help="Cap on new tokens of the final answer " + _default("final_max_tokens") + ".",
        rich_help_panel=SIM,
    ),
]

PrivateMemory = Annotated[
    bool | None,
    typer.Option(
        "--private-memory/--shared-memory",
        help="Each role's calls show only the events it witnessed, as the authors' agents "
        "knew (private), or the whole scene memory, which a prefix cache reuses best "
        "(shared) " + _default("private_memory") + ".",
        rich_help_panel=SIM,
        show_default=False,
    ),
]
Reactions = Annotated[
    str | None,
    typer.Option(
        "--reactions",
        help="joint: everyone who noticed an action reacts in one call, ruled on in one "
        "call; separate: a call per reaction and per ruling, as in the paper "
        + _default("reactions")
        + ".",
        rich_help_panel=SIM,
    ),
]
FinalPrompt = Annotated[
    str | None,
    typer.Option(
        "--final-prompt",
        help="How the final answer is written: verdict (decide help or decline from the "
        "scene's harm ratings, then answer), system (the consequence in the system prompt), "
        "authors (all context in one user turn) " + _default("final_prompt") + ".",
        rich_help_panel=SIM,
    ),
]


def simulation_config(config_file: Path | None, **values: Any):  # noqa: ANN201
    """SimulationConfig from an optional YAML file plus the command line's values."""
    from matrix_align.simulation.config import SimulationConfig

    if config_file is not None:
        return SimulationConfig.from_yaml(config_file, **values)
    return SimulationConfig.build(**values)


def build_model(
    backend: str,
    model: str | None,
    base_url: list[str] | None,
    api_key_env: str,
    parallel: int | None,
    timeout_s: float = 300.0,
    limits: Any = None,
    threads: int | None = None,
):  # noqa: ANN201
    """A ready backend: constructed, then checked (server reachable, model file sound)."""
    from matrix_align.llm.registry import make_model, preflight

    urls: str | list[str] | None = base_url[0] if base_url and len(base_url) == 1 else base_url
    chat_model = make_model(
        backend, model=model, base_url=urls, api_key_env=api_key_env, parallel=parallel,
        timeout_s=timeout_s, limits=limits, threads=threads,
    )  # fmt: skip
    run_async(preflight(chat_model))
    return chat_model


def rate_limits(rpm: int | None, tpm: int | None):  # noqa: ANN201
    """The process's one budget for --rpm/--tpm (None without either), shared by every model
    the command builds, so judges and the model under test draw on the same limit."""
    from matrix_align.llm.rate_limit import RateLimits

    return RateLimits.per_minute(rpm, tpm)


def run_async(coroutine: Any) -> Any:
    """Run a coroutine; a backend that keeps failing becomes one clear error."""
    try:
        return asyncio.run(coroutine)
    except BackendUnavailable:
        raise
    except TransientBackendError as exc:  # the run had started: a failure, not bad input
        raise RunFailed(
            f"The model backend kept failing after retries: {exc}",
            hint="check that the server is up and not overloaded; rerun to resume",
        ) from None
    except PermanentBackendError as exc:
        raise MatrixAlignError(
            f"The model backend rejected a request: {exc}",
            hint="check --base-url (it usually ends in /v1) and --model",
        ) from None
