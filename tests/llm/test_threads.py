"""The embedded model's default thread count: physical cores less the CPUs kept busy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from matrix_align.llm import embedded


class FakeStat:
    """A /proc/stat whose counters advance between reads by ``busy`` of ``cpus`` CPUs."""

    def __init__(self, tmp_path: Path, cpus: int, busy: float):
        self.path = tmp_path / "stat"
        self.cpus, self.busy, self.reads = cpus, busy, 0
        self.write()

    def write(self) -> None:
        ticks = 100 * self.reads
        used = int(ticks * self.busy)
        idle = ticks * self.cpus - used
        # user nice system idle iowait irq softirq steal
        self.path.write_text(f"cpu  {used} 0 0 {idle} 0 0 0 0\ncpu0 1 2 3 4\n")
        self.reads += 1


def counting_sleep(stat: FakeStat):
    return lambda seconds: stat.write()


@pytest.mark.parametrize(("busy", "expected"), [(0.0, 0), (0.3, 0), (1.0, 1), (1.8, 2)])
def test_busy_cpus_counts_cpus_mostly_busy(tmp_path, monkeypatch, busy, expected):
    stat = FakeStat(tmp_path, cpus=4, busy=busy)
    monkeypatch.setattr(embedded.time, "sleep", counting_sleep(stat))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert embedded.busy_cpus(stat=stat.path) == expected


def test_busy_cpus_is_zero_without_proc_stat(tmp_path):
    assert embedded.busy_cpus(sample_s=0.0, stat=tmp_path / "missing") == 0


def test_default_threads_leave_the_busy_cpus_and_keep_one(monkeypatch):
    embedded.default_threads.cache_clear()
    monkeypatch.setattr(embedded, "physical_cores", lambda: 4)
    monkeypatch.setattr(embedded, "busy_cpus", lambda: 1)
    assert embedded.default_threads() == 3
    embedded.default_threads.cache_clear()
    monkeypatch.setattr(embedded, "busy_cpus", lambda: 9)
    assert embedded.default_threads() == 1
    embedded.default_threads.cache_clear()


def test_physical_cores_is_within_the_cpus_this_process_may_use():
    assert 1 <= embedded.physical_cores() <= len(os.sched_getaffinity(0))


def test_threads_must_be_positive():
    from matrix_align.errors import MatrixAlignError

    with pytest.raises(MatrixAlignError, match="threads must be at least 1"):
        embedded.EmbeddedModel(threads=0)
