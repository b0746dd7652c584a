"""The 95% intervals every report uses: Wilson for rates, a seeded item bootstrap for means."""

from __future__ import annotations

import pytest

from matrix_align.stats import bootstrap_mean, wilson, wilson_over_items


def test_wilson_known_values() -> None:
    assert wilson(8, 10) == pytest.approx((0.490, 0.943), abs=1e-3)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    values = [[float(v)] for v in (1, 3, 4, 6, 7, 7, 8, 9, 9, 10)]
    first = bootstrap_mean(values, seed=7)
    assert first == bootstrap_mean(values, seed=7)
    assert first != bootstrap_mean(values, seed=8)
    low, high = first
    assert low < 6.4 < high  # the point estimate
    assert low > 4.0 and high < 8.5  # roughly mean +- 2 standard errors (sd 2.9, n 10)


def test_bootstrap_resamples_items_not_answers() -> None:
    # Three answers per item that always agree: the interval is as wide as with one answer
    # per item, not narrowed as if there were three times as many independent items.
    single = [[1.0], [0.0], [1.0], [1.0], [0.0], [1.0]]
    tripled = [g * 3 for g in single]
    assert bootstrap_mean(single, seed=1) == pytest.approx(bootstrap_mean(tripled, seed=1))


def test_bootstrap_degenerate_inputs() -> None:
    assert bootstrap_mean([]) is None
    assert bootstrap_mean([[], []]) is None
    assert bootstrap_mean([[2.0, 4.0]]) is None  # one item: no interval, not [3.0-3.0]


def test_rates_over_items_do_not_collapse_at_small_n() -> None:
    # 0 wins of 4: the percentile bootstrap said [0-0]; Wilson says up to about half.
    low, high = wilson_over_items([[0.0]] * 4)
    assert low == 0.0 and high == pytest.approx(0.490, abs=1e-3)
    assert wilson_over_items([[1.0], [0.0], [1.0]]) == pytest.approx(wilson(2, 3))
    assert wilson_over_items([]) is None and wilson_over_items([[]]) is None


def test_rates_over_items_count_items_not_repeats() -> None:
    single = [[1.0], [0.0], [1.0], [1.0], [0.0], [1.0]]
    assert wilson_over_items([g * 3 for g in single]) == pytest.approx(wilson_over_items(single))
