"""What a server keeps is bounded in bytes, not only in count: a request's scene stops at
the scene budget (400 scene_too_large), the traces kept in memory stay within their byte
budget, and --trace-dir within its own, oldest dropped first."""

from __future__ import annotations

import os
from pathlib import Path

import openai
import pytest

from matrix_align.serve.record import GateOutcome, ServeRecord
from matrix_align.serve.settings import ServeSettings
from matrix_align.serve.traces import TraceStore
from tests.serve.conftest import LoopbackServer, echo_model


def ask(server: LoopbackServer, query: str) -> str | None:
    completion = server.client().chat.completions.create(
        model="matrix-align", messages=[{"role": "user", "content": query}]
    )
    return completion.choices[0].message.content


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        (ServeSettings(max_scene_calls=3), "--max-scene-calls"),
        (ServeSettings(max_scene_chars=20_000), "--max-scene-mb"),
    ],
)
def test_a_scene_over_the_budget_is_stopped_with_400(settings, option) -> None:
    with LoopbackServer(echo_model(), settings) as server:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(server, "Why? " + "x" * 2000)
        assert caught.value.body["code"] == "scene_too_large"
        assert option in caught.value.body["message"]
        trace = server.trace(caught.value.response.headers["x-matrix-trace-id"])
        calls = trace["gate_calls"] + (trace["scene"] or {"calls": []})["calls"]
        assert trace["status"] == "failed" and len(calls) <= settings.max_scene_calls


def test_the_default_budget_answers_an_ordinary_scene(echo_server: LoopbackServer) -> None:
    assert ask(echo_server, "Is tea healthy?") == "Answer to [Is tea healthy?]"


def record(size: int) -> ServeRecord:
    return ServeRecord(model="m", query="q" * size, gate=GateOutcome(mode="always"))


def test_traces_in_memory_stay_within_their_byte_budget() -> None:
    store = TraceStore(max_records=1000, max_bytes=25_000)
    records = [record(10_000) for _ in range(5)]
    for r in records:
        store.add(r)
        store.finished(r)
    assert store.bytes <= 25_000
    assert [store.get(r.id) is not None for r in records] == [False, False, False, True, True]


def test_the_trace_folder_stays_within_its_budget_earlier_runs_included(tmp_path: Path) -> None:
    earlier = TraceStore(folder=tmp_path)
    old = record(10_000)
    earlier.add(old)
    earlier.finished(old)
    os.utime(tmp_path / f"{old.id}.json", (1, 1))  # written long ago
    store = TraceStore(folder=tmp_path, folder_max_bytes=25_000)
    new = [record(10_000) for _ in range(2)]
    for r in new:
        store.add(r)
        store.finished(r)
    kept = {p.stem for p in tmp_path.glob("*.json")}
    assert kept == {r.id for r in new} and store.folder_bytes <= 25_000
