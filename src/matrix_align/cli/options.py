"""Options shared by several commands (backend and simulation settings), defined once.

Each is an ``Annotated`` type for typer, gathered into option groups (``BackendOptions``,
``SimulationOptions``, ``DryRunOptions``; see ``option_groups``) that a command takes as one
parameter each. The backend's are derived from ``llm.spec.BackendSpec``, the simulation's
from ``simulation.config.SimulationConfig``: each setting is one field there, its help that
field's description. The simulation's options are the top layer of three: a YAML
``--config`` file (or profile), then ``--set``, then the options given, over
SimulationConfig's own defaults.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli.option_groups import OptionGroup, group, path_value
from matrix_align.llm.spec import BackendSpec
from matrix_align.simulation.config import SimulationConfig

SIM = "Simulation"
BACK = "Backend"
JUDGE = "Judges"


DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print the plan and the estimated calls, tokens (and cost, with the prices) "
        "and exit; no model is loaded or called.",
        rich_help_panel="Run",
    ),
]
# evaluate's, sweep's and generate's
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No live progress bars (for logs).", rich_help_panel="Run"),
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
        help="YAML file of the run: sections backend:, judges:, simulation:, systems:, data: "
        "(docs/simulation.md), or top-level simulation settings; or a built-in profile: "
        "paper (the authors' simulator as published: the user follows the first answer, no "
        "intent event, critiques of every action as the consequence, the final prompt with "
        "a worked example, private memory, fixed plan, separate reactions, strict "
        "feasibility, 5 roles x 5 steps, memory budget 3; still ours: rounds with seeds, "
        "enforced verdicts, typed replies; docs/method.md); --set and the options given "
        "here win.",
        rich_help_panel=SIM,
    ),
]
SetValues = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="A setting of a --config section, SECTION.KEY=VALUE (repeatable), e.g. --set "
        "backend.parallel=8 --set data.limit=5; a simulation setting also by its option's "
        "name or config field alone, e.g. --set roles=3 --set memory-budget=6. Wins over "
        "--config, and the options given here win over it.",
        rich_help_panel=SIM,
        show_default=False,
    ),
]
# The backend's options, from BackendSpec's fields (each one's flag, bounds and help are
# there); a command taking ``backend: BackendOptions`` receives the BackendSpec they name.
BackendOptions = Annotated[BackendSpec, group(BackendSpec, panel=BACK)]


@dataclass(kw_only=True)
class ConfigLayers(OptionGroup):
    """--config and --set: the layers beneath the options of a layered group of a
    SimulationConfig (``group(..., layered=True)``, given first among its bases);
    ``config()`` merges them."""

    config_file: ConfigFile = None
    set_values: SetValues = None

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """--config and --set first in the help, as the lower layers they are."""
        params = super().parameters()
        return sorted(params, key=lambda p: p.name not in ("config_file", "set_values"))

    def config(self) -> Any:
        """Defaults, then --config (a YAML file, its simulation: section, or a profile),
        then --set (its simulation settings), then the options."""
        from matrix_align.io import parse_assignments
        from matrix_align.run_file import SET_EXAMPLE, split_sets

        sets = split_sets(parse_assignments(self.set_values or [], example=SET_EXAMPLE))
        model, given = self.model, self.given()  # type: ignore[attr-defined]
        return model.load(self.config_file, sets=sets.get("simulation"), overrides=given)


# The simulation's options, from SimulationConfig's fields (each one's flag and help are there).
_SimulationFields: Any = group(SimulationConfig, panel=SIM, layered=True)


@dataclass(kw_only=True)
class SimulationOptions(ConfigLayers, _SimulationFields):
    """The simulation's options, one per SimulationConfig field (but its ``NOT_A_FLAG``
    ones), over --config and --set; ``config()`` gives the SimulationConfig they make."""


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
