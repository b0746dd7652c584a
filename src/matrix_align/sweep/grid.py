"""The grid of a sweep: ``--grid roles=1,3,5 --grid steps=1,2`` -> one simulation
configuration per cell.

A key names any ``SimulationConfig`` setting, by its command-line name (``roles``,
``steps``, ``depth``, ``memory-budget``, ``final-prompt``...) or its config field name
(``n_roles``, ``memory_budget``...). Values are validated by ``SimulationConfig`` itself,
so a value the simulator would refuse is refused here, before any model is loaded.

Each cell is named by a tag made of the keys as the user wrote them, in the order given
(``roles=1,steps=2``); the cell's evaluate entry is then ``matrix@roles=1,steps=2``. The tag
is the cell's identity in the output folder: rerunning the same grid finds its cells again.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.config import SimulationConfig, setting_field

# Characters that would break an entry name in the report's markdown tables, or the
# ``key=value,key=value`` tag itself.
_FORBIDDEN = set("|,=@\n\r\t`")
MAX_CELLS = 256  # a guard against a typo that multiplies a grid into days of work


@dataclass(frozen=True)
class Axis:
    """One ``--grid`` option: a setting and the values it takes, in the order given."""

    key: str  # as the user wrote it, normalised to dashes (the tag uses it)
    field: str  # the SimulationConfig field
    values: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: the values of every axis, and the configuration they give."""

    values: tuple[tuple[str, str], ...]  # (key, value) per axis, in axis order
    config: SimulationConfig

    @property
    def tag(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.values)

    def value(self, key: str) -> str:
        return dict(self.values)[key]


def field_of(key: str) -> str:
    """The ``SimulationConfig`` field a grid key names, or one error listing the names."""
    return setting_field(key, "grid setting")


def parse_axis(text: str) -> Axis:
    """``KEY=V1,V2,...`` -> an Axis (values de-duplicated, order kept)."""
    key, sep, raw = text.partition("=")
    example = "e.g. --grid roles=1,3,5,7"
    if not sep or not key.strip():
        raise MatrixAlignError(f"--grid {text!r} is not KEY=VALUES.", hint=example)
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    if not values:
        raise MatrixAlignError(f"--grid {text!r} has no values.", hint=example)
    bad = [v for v in values if _FORBIDDEN & set(v)]
    if bad:
        raise MatrixAlignError(
            f"--grid value {bad[0]!r} holds a character that cannot be part of an entry name.",
            hint="values are numbers or words (lenient, strict, joint...)",
        )
    name = key.strip().lower().replace("_", "-")
    return Axis(key=name, field=field_of(name), values=values)


def parse_grid(texts: list[str]) -> list[Axis]:
    axes = [parse_axis(text) for text in texts]
    fields = [axis.field for axis in axes]
    dupes = sorted({f for f in fields if fields.count(f) > 1})
    if dupes:
        raise MatrixAlignError(
            f"The grid names {dupes[0]} twice.", hint="give each setting one --grid option"
        )
    return axes


def cells(axes: list[Axis], base: SimulationConfig) -> list[Cell]:
    """Every combination of the axes' values, the first axis varying slowest, each applied on
    top of ``base`` (the settings the sweep's other options give) and validated."""
    if not axes:
        raise MatrixAlignError("sweep needs at least one --grid.", hint="e.g. --grid roles=1,3,5,7")
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > MAX_CELLS:
        raise MatrixAlignError(
            f"The grid has {total} cells (at most {MAX_CELLS}).",
            hint="split it into several sweeps into the same --output folder",
        )
    out: list[Cell] = []
    for combo in itertools.product(*(axis.values for axis in axes)):
        values: dict[str, Any] = base.model_dump()
        for axis, value in zip(axes, combo, strict=True):
            values[axis.field] = value
        try:
            config = SimulationConfig.build(**values)
        except MatrixAlignError as exc:
            shown = ", ".join(f"{a.key}={v}" for a, v in zip(axes, combo, strict=True))
            raise MatrixAlignError(f"Grid cell {shown}: {exc.message}", hint=exc.hint) from None
        pairs = tuple((axis.key, value) for axis, value in zip(axes, combo, strict=True))
        out.append(Cell(values=pairs, config=config))
    _refuse_equal_cells(out)
    return out


def _refuse_equal_cells(found: list[Cell]) -> None:
    """Two values spelled differently can be one setting (``roles=1,01``,
    ``temperature=0.2,.2``, ``keep-refusals=yes,true``): their cells would be two entries of
    one configuration, the second answering nothing. Compared after validation, so every
    spelling the simulator accepts is caught."""
    seen: dict[str, Cell] = {}
    for cell in found:
        first = seen.setdefault(cell.config.model_dump_json(), cell)
        if first is not cell:
            spelled = [
                f"{key}={a} and {key}={b}"
                for (key, a), (_, b) in zip(first.values, cell.values, strict=True)
                if a != b
            ]
            raise MatrixAlignError(
                f"The grid's cells {first.tag} and {cell.tag} are the same settings: "
                f"{'; '.join(spelled)} are one value.",
                hint="give each value once, spelled one way",
            )
