"""95% intervals for the figures the commands report, defined once.

- ``wilson``: a rate k/n (refused, harmless, answered...). The Wilson score interval stays
  inside [0, 1] and is sound for small n and rates near 0 or 1, unlike the normal one.
- ``bootstrap_mean``: a mean over items (a 1-10 score, or a win rate as the mean of 0/1
  outcomes). Resampling is over *groups* (one group per benchmark item), so the K answers
  of an item sampled K times (``evaluate --epochs``) count as one item, not as K independent
  ones; with one value per group it is the ordinary bootstrap. The generator is seeded, so
  the same data give the same interval on every machine and every rebuild of a report.

Pure Python on purpose: the core install has no numpy, and a few thousand resamples of a
few hundred items take well under a second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Z95 = 1.959963984540054  # the two-sided 95% normal quantile
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean(
    groups: Sequence[Sequence[float]],
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of every value in ``groups``, resampling
    whole groups; None when there is no value at all."""
    sums = [float(sum(g)) for g in groups if len(g)]
    sizes = [len(g) for g in groups if len(g)]
    if not sizes:
        return None
    if len(sizes) == 1:  # one item: no spread to resample from
        mean = sums[0] / sizes[0]
        return mean, mean
    rng = random.Random(seed)
    indices = range(len(sizes))
    means = []
    for _ in range(resamples):
        picked = rng.choices(indices, k=len(sizes))
        means.append(sum(sums[i] for i in picked) / sum(sizes[i] for i in picked))
    means.sort()
    tail = (1.0 - level) / 2
    low = means[int(math.floor(tail * (resamples - 1)))]
    high = means[int(math.ceil((1.0 - tail) * (resamples - 1)))]
    return low, high
