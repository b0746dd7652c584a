"""Krippendorff's alpha against the worked example of Krippendorff (2011), "Computing
Krippendorff's Alpha-Reliability": 4 observers, 12 units, values 1-5, some missing."""

from __future__ import annotations

import pytest

from matrix_align.humaneval.agreement import krippendorff_alpha

N = None
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
UNITS = {u: [o[u] for o in OBSERVERS if o[u] is not None] for u in range(12)}


def test_the_published_values() -> None:
    assert krippendorff_alpha(UNITS, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(UNITS, "ordinal", order=[1, 2, 3, 4, 5]) == pytest.approx(
        0.815, abs=5e-4
    )
    assert krippendorff_alpha(UNITS, "interval") == pytest.approx(0.849, abs=5e-4)


def test_edge_cases() -> None:
    assert krippendorff_alpha({1: ["win", "win"], 2: ["lose", "lose"]}) == 1.0
    assert krippendorff_alpha({1: ["win"], 2: ["lose"]}) is None  # nothing pairable
    assert krippendorff_alpha({1: ["tie", "tie"], 2: ["tie", "tie"]}) is None  # no variation
    # systematic disagreement is below zero
    assert krippendorff_alpha({1: ["win", "lose"], 2: ["lose", "win"]}) < 0
