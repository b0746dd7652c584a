"""Options shared by several commands (backend and simulation settings), defined once.

Each is an ``Annotated`` type for typer, gathered into option groups (``BackendOptions``,
``SimulationOptions``, ``DryRunOptions``; see ``option_groups``) that a command takes as one
parameter each. The backend's are derived from ``llm.spec.BackendSpec``, their one list.
Defaults of simulation options are None so that ``--set``, a YAML ``--config`` file, then
SimulationConfig's own defaults fill what the user left out; their help quotes
SimulationConfig's defaults (``_default``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli.option_groups import OptionGroup, group
from matrix_align.llm.spec import BackendSpec


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


# The backend's options, from BackendSpec's fields (each one's flag, bounds and help are
# there); a command taking ``backend: BackendOptions`` receives the BackendSpec they name.
BackendOptions = Annotated[BackendSpec, group(BackendSpec, panel=BACK)]


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
