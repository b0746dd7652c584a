"""Stratified samples: proportional shares that add up, every stratum kept, seeded, and
prefixes spread over the strata."""

from __future__ import annotations

from collections import Counter

from matrix_align.evaluate.stratify import allocate, stratified_sample


def test_allocation_is_proportional_and_adds_up() -> None:
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    shares = allocate({"a": 14, "b": 10, "c": 10, "d": 9}, 20)
    assert sum(shares.values()) == 20 and shares["a"] >= shares["d"]
    # a stratum too small for its rounded share still gets one item when n allows
    assert allocate({"big": 97, "small": 3}, 5) == {"big": 4, "small": 1}
    assert allocate({"a": 3, "b": 2}, 100) == {"a": 3, "b": 2}  # fewer items than asked


def test_sample_is_seeded_stratified_and_round_robin() -> None:
    items = [(f"x{i}", "a" if i < 60 else "b" if i < 90 else "c") for i in range(100)]
    sample = stratified_sample(items, 10, lambda item: item[1], seed=1)
    assert Counter(s for _, s in sample) == {"a": 6, "b": 3, "c": 1}
    assert [s for _, s in sample[:3]] == ["a", "b", "c"]  # a prefix covers every stratum
    assert sample == stratified_sample(items, 10, lambda item: item[1], seed=1)
    assert sample != stratified_sample(items, 10, lambda item: item[1], seed=2)
    assert len(stratified_sample(items, 500, lambda item: None, seed=0)) == 100
