"""The batch layer on its own: any items, any work function, one folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from matrix_align.batch import BatchRunner, Outcome
from matrix_align.simulation.trace import Usage


def stored(out: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / name).read_text("utf-8").splitlines()]


def test_the_runner_is_generic(tmp_path: Path) -> None:
    """evaluate reuses BatchRunner with its own items and work function."""

    class Item:
        def __init__(self, key: str) -> None:
            self.id = key

        def error_fields(self) -> dict[str, Any]:
            return {"id": self.id, "source": "judge", "mode": "pairwise"}

    async def work(item: Item) -> Outcome:
        if item.id == "bad":
            raise ValueError("unparseable verdict")
        return Outcome(record={"id": item.id, "verdict": "A"}, usage=Usage(calls=1))

    runner = BatchRunner(tmp_path, samples_file="results.jsonl", concurrency=2)
    runner.open()
    stats = asyncio.run(runner.run([Item("x"), Item("bad"), Item("y")], work))
    runner.close()
    assert (stats.completed, stats.failed) == (2, 1)
    assert stats.failures_by_reason == {"internal_error:ValueError": 1}
    assert [r["id"] for r in stored(tmp_path, "results.jsonl")] == ["x", "y"]
