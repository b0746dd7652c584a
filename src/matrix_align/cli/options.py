"""Options shared by several commands (backend and simulation settings), defined once.

Each is an ``Annotated`` type for typer, gathered into option groups (``BackendOptions``,
``SimulationOptions``, ``DryRunOptions``; see ``option_groups``) that a command takes as one
parameter each. Defaults of simulation options are None so that ``--set``, a YAML
``--config`` file, then SimulationConfig's own defaults fill what the user left out; their
help quotes SimulationConfig's defaults (``_default``).
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli.option_groups import OptionGroup
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


def field_default(model: Any, field: str) -> str:
    """The default of a config class's field as help text quotes it (``true``, ``0.2``,
    ``2e-5``), from its one definition."""
    value = model.model_fields[field].default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:g}")
    return str(value)


def _default(field: str) -> str:
    """The default of a SimulationConfig field, quoted in help text from its one definition."""
    from matrix_align.simulation.config import SimulationConfig

    return f"(default: {field_default(SimulationConfig, field)})"


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
        f"name, {short_names_text()}, the path of a GGUF file (docs/models.md), or a "
        "`train` output folder: its base with its LoRA adapter (docs/train.md).",
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
        help="YAML file of simulation settings, or a built-in profile: paper (the authors' "
        "simulator as published: the user follows the first answer, no intent event, "
        "critiques of every action as the consequence, the final prompt with a worked "
        "example, private memory, fixed plan, separate reactions, strict feasibility, 5 "
        "roles x 5 steps, memory budget 3; still ours: rounds with seeds, enforced "
        "verdicts, typed replies; docs/method.md); options given here win.",
        rich_help_panel=SIM,
    ),
]
SetValues = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="A simulation setting by its option's name or its config field, KEY=VALUE "
        "(repeatable), e.g. --set roles=3 --set memory-budget=6; wins over --config, and "
        "the options given here win over it.",
        rich_help_panel=SIM,
        show_default=False,
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
        "authors (all context in one user turn), paper (the same with a worked refusal "
        "example) " + _default("final_prompt") + ".",
        rich_help_panel=SIM,
    ),
]

Prompts = Annotated[
    Path | None,
    typer.Option(
        "--prompts",
        parser=path_value,
        help="Folder of NAME.j2 templates replacing the scene's built-in ones by name "
        "(docs/simulation.md lists them and their variables); checked before any call, "
        "and recorded in the trace, provenance and sample ids.",
        rich_help_panel=SIM,
        show_default=False,
    ),
]


@dataclass(kw_only=True)
class BackendOptions(OptionGroup):
    """The model backend's options; ``spec()`` gives the ``BackendSpec`` they name."""

    backend: Backend = "embedded"
    model: Model = None
    base_url: BaseUrl = None
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY"
    parallel: Parallel = None
    threads: Threads = None
    request_timeout: RequestTimeout = 300.0
    rpm: Rpm = None
    tpm: Tpm = None

    @functools.cached_property
    def limits(self):  # noqa: ANN201
        """The process's one budget for --rpm/--tpm (None without either), shared by every
        model the command builds, so judges and the model under test draw on one limit."""
        from matrix_align.llm.rate_limit import RateLimits

        return RateLimits.per_minute(self.rpm, self.tpm)

    @property
    def key(self) -> str:
        """The model's name in run folders (``backend:model``)."""
        from matrix_align.folders.records import model_key

        return model_key(self.backend, self.model)

    @property
    def slots(self) -> int:
        """Requests served at once: --parallel, else the backend's default."""
        from matrix_align.llm.registry import default_parallel

        return self.parallel or default_parallel(self.backend)

    def spec(self, *, retries: int | None = None):  # noqa: ANN201
        """The backend these options name, as the library opens it: ``async with
        backend.spec().open() as model`` builds, checks and finally closes the model."""
        from matrix_align.llm.spec import BackendSpec

        urls = tuple(self.base_url or ())
        extra = {} if retries is None else {"retries": retries}
        return BackendSpec(
            self.backend, model=self.model, base_url=urls[0] if len(urls) == 1 else urls or None,
            api_key_env=self.api_key_env, parallel=self.parallel, threads=self.threads,
            timeout_s=self.request_timeout, limits=self.limits, **extra,
        )  # fmt: skip


@dataclass(kw_only=True)
class SimulationOptions(OptionGroup):
    """The simulation's options; ``config()`` gives the SimulationConfig they make."""

    config_file: ConfigFile = None
    set_values: SetValues = None
    roles: Roles = None
    steps: Steps = None
    depth: Depth = None
    memory_budget: MemoryBudget = None
    adaptive_plan: AdaptivePlan = None
    strictness: Strictness = None
    seed: Seed = None
    temperature: Temperature = None
    max_tokens: MaxTokens = None
    final_max_tokens: FinalMaxTokens = None
    reactions: Reactions = None
    private_memory: PrivateMemory = None
    final_prompt: FinalPrompt = None
    prompts: Prompts = None

    def given(self) -> dict[str, Any]:
        """The settings given as options, by field name (None: not given)."""
        from matrix_align.simulation.config import setting_field

        skip = {"config_file", "set_values"}
        return {
            setting_field(f.name): getattr(self, f.name) for f in fields(self) if f.name not in skip
        }

    def config(self):  # noqa: ANN201
        """Defaults, then --config (a YAML file or profile), then --set, then the options."""
        from matrix_align.io import parse_assignments
        from matrix_align.simulation.config import SimulationConfig

        sets = parse_assignments(self.set_values or [], example="e.g. --set roles=3")
        return SimulationConfig.load(self.config_file, sets=sets, overrides=self.given())


@dataclass(kw_only=True)
class DryRunOptions(OptionGroup):
    """--dry-run and the prices of its cost estimate."""

    dry_run: DryRun = False
    price_in: PriceIn = None
    price_out: PriceOut = None

    def check(self) -> None:
        from matrix_align.estimate import check_prices

        check_prices(self.dry_run, self.price_in, self.price_out)

    def print(self, estimate: Any) -> None:
        from matrix_align.estimate import print_estimate

        print_estimate(estimate, self.price_in, self.price_out)


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
