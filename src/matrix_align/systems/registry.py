"""The systems by name (``SYSTEMS``), listed here, each from its module (nothing registers
itself at import), and what a system's answer depends on (``system_settings``)."""

from __future__ import annotations

from typing import Any

from matrix_align.errors import MatrixAlignError, check_known
from matrix_align.simulation.config import SimulationConfig
from matrix_align.systems import (
    best_of_n,
    context_distillation,
    critique_revise,
    debate,
    self_align,
    self_refine,
    vanilla,
)
from matrix_align.systems.context import System
from matrix_align.systems.options import SystemOptions

# matrix runs the simulator (``run=None``) and keeps its full scene trace.
MATRIX = System(
    "matrix",
    "MATRIX social scene simulation at inference time",
    "about 7 + steps x (2 + 2 x receivers), see simulate",
    None,
)

SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        vanilla.SYSTEM,
        MATRIX,
        critique_revise.SYSTEM,
        self_align.SYSTEM,
        context_distillation.SYSTEM,
        debate.SYSTEM,
        best_of_n.SYSTEM,
        self_refine.SYSTEM,
    )
}


def check_systems(names: list[str]) -> list[str]:
    """The names, validated: an unknown one is an error that lists the valid names."""
    check_known(names, SYSTEMS, "system")
    if not names:
        raise MatrixAlignError("No systems given.", hint=f"choose from: {', '.join(SYSTEMS)}")
    return names


def system_settings(
    name: str, config: SimulationConfig, options: SystemOptions, selector: str | None = None
) -> dict[str, Any]:
    """The settings that determine a system's answer, for stable record ids.

    Only what the system reads is included, so e.g. changing ``--best-of-n`` does not
    invalidate stored vanilla answers.
    """
    system = SYSTEMS[name]
    settings: dict[str, Any] = {"system": name}
    if name == "matrix":
        settings["simulation"] = config.model_dump()
    else:
        settings.update(
            seed=config.seed, temperature=config.temperature, max_tokens=config.max_tokens
        )
    settings.update({f: getattr(options, f) for f in system.option_fields})
    if system.uses_selector:
        settings["selector"] = selector or "self"
    return settings
