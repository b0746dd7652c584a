"""95% intervals for the figures the commands report, defined once.

- ``wilson``: a rate k/n (refused, harmless, answered...). The Wilson score interval stays
  inside [0, 1] and is sound for small n and rates near 0 or 1, unlike the normal one (or a
  percentile bootstrap, which gives [0, 0] for 0 wins of 4).
- ``wilson_over_items``: a rate whose trials come in groups, one group per benchmark item
  (win / tie / lose of pairs judged at every ``evaluate --epochs`` sample, the ratings of
  several raters). The share is counted over every trial, and n is the number of items: the
  repeats of one item are not independent, so they must not narrow the interval.
- ``bootstrap_mean``: a mean over items (a 1-10 score). Resampling is over *groups* (one
  group per benchmark item), so the K answers of an item sampled K times count as one item,
  not as K independent ones; with one value per group it is the ordinary bootstrap. The
  generator is seeded, so the same data give the same interval on every machine and every
  rebuild of a report. One item has no spread to resample: no interval, rather than a
  zero-width one that looks certain.

numpy comes with the core install (through ``datasets``); it draws the resamples at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the two-sided 95% normal quantile
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_over_items(groups: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """The Wilson interval of the share of 1s among the 0/1 values in ``groups`` (one group
    per item), with the items as its n; None when there is no value at all."""
    groups = [g for g in groups if len(g)]
    if not groups:
        return None
    share = sum(sum(g) for g in groups) / sum(len(g) for g in groups)
    return wilson(share * len(groups), len(groups))


def bootstrap_mean(
    groups: Sequence[Sequence[float]],
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of every value in ``groups``, resampling
    whole groups; None with fewer than two groups."""
    import numpy as np

    kept = [g for g in groups if len(g)]
    if len(kept) < 2:
        return None
    sums = np.array([float(sum(g)) for g in kept])
    sizes = np.array([len(g) for g in kept], dtype=float)
    picked = np.random.default_rng(seed).integers(0, len(kept), size=(resamples, len(kept)))
    means = sums[picked].sum(axis=1) / sizes[picked].sum(axis=1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
