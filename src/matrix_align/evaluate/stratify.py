"""A seeded sample of n items stratified over a field (a harm category, a topic...).

Used to pin evaluation subsets (``subsets.py``) and to pick the items of a human-evaluation
sheet (``humaneval``). Each stratum gets its share of n in proportion to its size (largest
remainders first, so the shares add up to n exactly), and at least one item when n allows,
so a small category is not left out by rounding.

The sample is returned in round-robin order over the strata (each stratum's items in their
seeded random order), so any prefix of it is itself spread over the strata: ``--limit 10``
on a pinned subset still covers every category it can.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
NO_STRATUM = "(none)"  # the stratum of an item without the field


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """How many items each stratum gives: proportional, adding up to min(n, total)."""
    total = sum(sizes.values())
    n = min(n, total)
    if total == 0 or n == 0:
        return dict.fromkeys(sizes, 0)
    exact = {s: n * size / total for s, size in sizes.items()}
    shares = {s: int(value) for s, value in exact.items()}
    # Largest remainders first; ties broken by name so the result never depends on dict order.
    for s in sorted(sizes, key=lambda s: (-(exact[s] - shares[s]), s))[: n - sum(shares.values())]:
        shares[s] += 1
    # At least one per stratum when n allows: taken from the stratum with the most to spare.
    if n >= len(sizes):
        for s in sorted(sizes):
            if shares[s] == 0 and sizes[s] > 0:
                donor = max(sorted(shares), key=lambda d: shares[d])
                shares[donor] -= 1
                shares[s] += 1
    return shares


def stratified_sample(
    items: Sequence[T], n: int, stratum: Callable[[T], str | None], seed: str | int
) -> list[T]:
    """n of ``items`` (all of them when there are fewer), stratified by ``stratum(item)``,
    in round-robin order over the strata (sorted by name). ``seed`` makes it reproducible:
    the same items and seed give the same sample on every machine."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(stratum(item) or NO_STRATUM, []).append(item)
    rng = random.Random(str(seed))
    for name in sorted(groups):
        rng.shuffle(groups[name])
    shares = allocate({name: len(group) for name, group in groups.items()}, n)
    picked = {name: groups[name][: shares[name]] for name in sorted(groups)}
    out: list[T] = []
    for index in range(max((len(p) for p in picked.values()), default=0)):
        out += [p[index] for p in picked.values() if index < len(p)]
    return out
