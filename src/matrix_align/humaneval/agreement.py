"""Krippendorff's alpha: how far raters agree beyond what chance would give.

Chosen over Cohen's kappa (which ``evaluate`` uses for two judges) because human ratings
have any number of raters, and not every rater rates every item: alpha takes both in its
stride. Implemented here (a few dozen lines, pure Python like ``stats.py``) rather than
through a package, since the core install has no numpy. The definitions follow
Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011): a coincidence matrix over
the pairable values (units rated by at least two raters), then

    alpha = 1 - D_observed / D_expected

with the nominal difference (0 when two values are equal, else 1) or the ordinal one (based
on the ranks between two values: a win and a loss are further apart than a win and a tie).
Alpha is 1 for perfect agreement, 0 for chance, and below 0 for systematic disagreement; it
is undefined (None) when fewer than two values can be paired or every value is the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

Level = Literal["nominal", "ordinal", "interval"]


def _coincidences(
    units: Mapping[Hashable, Sequence[Hashable]],
) -> dict[tuple[Hashable, Hashable], float]:
    """o[c, k]: each ordered pair of values from different raters within a unit, weighted by
    1 / (values in the unit - 1), so every unit counts its values once in all."""
    table: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values in units.values():
        m = len(values)
        if m < 2:
            continue  # unpairable: a unit rated once tells nothing about agreement
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    table[(c, k)] += 1.0 / (m - 1)
    return table


def krippendorff_alpha(
    units: Mapping[Hashable, Sequence[Hashable]],
    level: Level = "nominal",
    order: Sequence[Hashable] | None = None,
) -> float | None:
    """Alpha of ``units`` (unit -> the values its raters gave; missing ratings left out).

    ``order`` ranks the values for the ordinal level (lowest first; default: sorted); the
    interval level reads the values as numbers."""
    o = _coincidences(units)
    if not o:
        return None
    totals: dict[Hashable, float] = defaultdict(float)
    for (c, _), weight in o.items():
        totals[c] += weight
    n = sum(totals.values())
    values = list(order) if order is not None else sorted(totals, key=str)
    missing = [v for v in totals if v not in values]
    if missing and level == "ordinal":
        raise ValueError(f"values {missing} are not in the given order")
    rank = {v: i for i, v in enumerate(values)}

    def delta(c: Hashable, k: Hashable) -> float:
        if c == k:
            return 0.0
        if level == "nominal":
            return 1.0
        if level == "interval":
            return (float(c) - float(k)) ** 2  # type: ignore[arg-type]
        low, high = sorted((rank[c], rank[k]))
        between = sum(totals.get(values[g], 0.0) for g in range(low, high + 1))
        return (between - (totals.get(c, 0.0) + totals.get(k, 0.0)) / 2) ** 2

    observed = sum(weight * delta(c, k) for (c, k), weight in o.items()) / n
    expected = sum(totals[c] * totals[k] * delta(c, k) for c in totals for k in totals) / (
        n * (n - 1)
    )
    if expected == 0:
        return None  # no variation at all: agreement cannot be told from chance
    return 1.0 - observed / expected
