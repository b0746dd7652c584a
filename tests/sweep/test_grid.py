"""The sweep grid: setting names, values checked by SimulationConfig, cells and their tags."""

from __future__ import annotations

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.config import SimulationConfig
from matrix_align.sweep.grid import cells, parse_axis, parse_grid


def test_cli_and_field_names_both_work() -> None:
    assert parse_axis("roles=1,3").field == "n_roles"
    assert parse_axis("n_steps=2").field == "n_steps"
    assert parse_axis("memory-budget=4,8").field == "memory_budget"
    assert parse_axis("memory_budget=4").key == "memory-budget"  # tags use the dashed name
    assert parse_axis("steps=1, 2,2 ,4").values == ("1", "2", "4")


def test_cells_vary_the_first_axis_slowest_on_top_of_the_base() -> None:
    base = SimulationConfig(temperature=0.5)
    grid = cells(parse_grid(["roles=1,3", "steps=1,2"]), base)
    assert [c.tag for c in grid] == [
        "roles=1,steps=1",
        "roles=1,steps=2",
        "roles=3,steps=1",
        "roles=3,steps=2",
    ]
    assert (grid[2].config.n_roles, grid[2].config.n_steps) == (3, 1)
    assert all(c.config.temperature == 0.5 for c in grid)
    words = cells(parse_grid(["strictness=lenient,strict", "adaptive-plan=false"]), base)
    assert words[1].config.strictness == "strict" and not words[1].config.adaptive_plan


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["rolez=1"], "Unknown grid setting"),
        (["roles"], "is not KEY=VALUES"),
        (["roles="], "has no values"),
        (["roles=1", "n_roles=2"], "names n_roles twice"),
        (["roles=1|2"], "cannot be part of an entry name"),
    ],
)
def test_bad_grids_are_clear_errors(grid: list[str], message: str) -> None:
    with pytest.raises(MatrixAlignError, match=message):
        parse_grid(grid)


def test_a_value_the_simulator_refuses_names_the_cell() -> None:
    with pytest.raises(MatrixAlignError, match="Grid cell roles=99"):
        cells(parse_grid(["roles=1,99"]), SimulationConfig())
    with pytest.raises(MatrixAlignError, match="at least one --grid"):
        cells([], SimulationConfig())
    with pytest.raises(MatrixAlignError, match="cells"):
        cells(
            parse_grid(
                [
                    "seed=" + ",".join(map(str, range(20))),
                    "roles=" + ",".join(map(str, range(1, 15))),
                ]
            ),
            SimulationConfig(),
        )


@pytest.mark.parametrize(
    ("grid", "message"),
    [(["roles=1,01"], "cells roles=1 and roles=01 are the same settings: roles=1 and roles=01"),
     (["steps=1,2", "temperature=0.2,.2"], "temperature=0.2 and temperature=.2 are one value"),
     (["keep-refusals=yes,true,1"], "keep-refusals=yes and keep-refusals=true are one value")],
)  # fmt: skip
def test_values_spelled_differently_but_equal_are_refused(grid: list[str], message: str) -> None:
    with pytest.raises(MatrixAlignError, match=message) as caught:
        cells(parse_grid(grid), SimulationConfig())
    assert caught.value.hint == "give each value once, spelled one way"
