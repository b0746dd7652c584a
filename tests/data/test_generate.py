"""The batch runner: stable ids, resume, per-sample error records, retries of errored ids,
summary counts that add up, bounded concurrency, early stop, and faults from a real
(loopback) OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from matrix_align.data.generate import (
    GenerateOptions,
    SourceSpec,
    build_plan,
    check_output,
    generate,
)
from matrix_align.errors import MatrixAlignError, PermanentBackendError, TransientBackendError
from matrix_align.folders.records import model_key
from matrix_align.folders.samples import SampleRecord
from matrix_align.llm.base import Completion, Message
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.llm.wrappers import AccountingModel, RetryingModel
from matrix_align.simulation.config import SimulationConfig

KEY = "scripted:default"


class FaultyModel:
    """The scripted demo, except for calls whose messages mention a marker: ``always``
    markers fail every time (permanently), ``once`` markers fail the first call only
    (transiently, so a RetryingModel recovers), ``empty`` markers answer with nothing."""

    def __init__(
        self, *, always: tuple[str, ...] = (), once: tuple[str, ...] = (), empty=(), delay=0.0
    ) -> None:
        self.inner = ScriptedModel.demo()
        self.name = "faulty"
        self.always, self.once, self.empty, self.delay = always, once, empty, delay
        self.tripped: set[str] = set()
        self.calls = 0

    async def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        text = " ".join(m["content"] for m in messages)
        for marker in self.always:
            if marker in text:
                raise PermanentBackendError(f"rejected {marker}")
        for marker in self.once:
            if marker in text and marker not in self.tripped:
                self.tripped.add(marker)
                raise TransientBackendError(f"hiccup {marker}")
        for marker in self.empty:
            if marker in text:
                return Completion(text="", completion_tokens=0)
        return await self.inner.complete(messages, **kwargs)


def write_queries(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), "utf-8")
    return path


def plan_for(path: Path, config: SimulationConfig, mode: str = "matrix", **kw: Any):
    return build_plan([], [path], config=config, model_key=KEY, input_mode=mode, **kw)


def run(plan, model, config, out: Path, **options: Any) -> dict[str, Any]:
    opts = GenerateOptions(output=out, export=False, **options)
    return asyncio.run(generate(plan, model, config, opts, model_info={"key": KEY}))


def stored(out: Path, name: str = "samples.jsonl") -> list[dict[str, Any]]:
    path = out / name
    return (
        [json.loads(line) for line in path.read_text("utf-8").splitlines()] if path.exists() else []
    )


def assert_counts_add_up(summary: dict[str, Any], out: Path) -> None:
    counts, this_run = summary["counts"], summary["this_run"]
    assert counts["planned"] == counts["done"] + counts["failed"] + counts["pending"]
    assert sum(summary["failures_by_reason"].values()) == counts["failed"]
    finished = this_run["completed"] + this_run["failed"] + this_run["cancelled"]
    assert this_run["attempted"] == finished
    assert len(stored(out, "errors.jsonl")) == counts["failed"]
    assert len(stored(out)) == counts["records_in_file"]


def test_ids_are_stable_and_follow_query_source_mode_config_and_model(
    tmp_path: Path, tiny_config: SimulationConfig
) -> None:
    path = write_queries(tmp_path / "q.jsonl", ["a?", "b?"])
    ids = [i.id for i in plan_for(path, tiny_config).items]
    assert ids == [i.id for i in plan_for(path, tiny_config).items]
    assert len(set(ids)) == 2
    other_config = SimulationConfig(n_roles=1, n_steps=2)
    assert not set(ids) & {i.id for i in plan_for(path, other_config).items}
    assert not set(ids) & {i.id for i in plan_for(path, tiny_config, mode="direct").items}
    other_model = build_plan([], [path], config=tiny_config, model_key="openai:x")
    assert not set(ids) & {i.id for i in other_model.items}
    mixed = build_plan(
        [SourceSpec.parse("advbench:matrix:3"), SourceSpec.parse("advbench:direct:3")],
        config=tiny_config,
        model_key=KEY,
    )
    assert len(mixed.items) == 6 and len({i.id for i in mixed.items}) == 6


def test_a_mix_produces_matrix_and_direct_records(tmp_path: Path, tiny_config) -> None:
    plan = build_plan(
        [SourceSpec.parse("advbench:matrix:2"), SourceSpec.parse("vicuna-bench:direct:2")],
        config=tiny_config,
        model_key=KEY,
    )
    summary = run(plan, ScriptedModel.demo(), tiny_config, tmp_path)
    records = [SampleRecord.model_validate(r) for r in stored(tmp_path)]
    assert sorted(r.mode for r in records) == ["direct", "direct", "matrix", "matrix"]
    for r in records:
        assert r.prompt[0].role == "user" and r.completion[0].role == "assistant" and r.answer
        trace = json.loads(r.trace)
        assert trace["final_response"] == r.answer
        assert r.meta["generation"]["usage"]["calls"] == len(trace["calls"])
        assert r.meta["source_id"].startswith(r.source)
    matrix = [r for r in records if r.mode == "matrix"]
    assert all(r.initial_response == json.loads(r.trace)["initial_response"] for r in matrix)
    assert summary["per_sample"]["direct"]["calls"] == 1
    assert summary["per_sample"]["matrix"]["calls"] > 1
    assert_counts_add_up(summary, tmp_path)


def test_failures_become_error_records_and_the_rerun_retries_them(
    tmp_path: Path, tiny_config: SimulationConfig
) -> None:
    path = write_queries(
        tmp_path / "q.jsonl",
        ["fine one?", "BROKEN-1 here?", "flaky FLAKY-1?", "BROKEN-2 too?", "fine two?"],
    )
    plan = plan_for(path, tiny_config)
    faulty = FaultyModel(always=("BROKEN-1", "BROKEN-2"), once=("FLAKY-1",))
    model = AccountingModel(RetryingModel(faulty, max_retries=2, base_delay_s=0.001))
    out = tmp_path / "run"
    summary = run(plan, model, tiny_config, out)
    assert summary["counts"] == {
        "planned": 5, "done": 3, "failed": 2, "pending": 0,
        "records_in_file": 3, "duplicate_queries_skipped": 0,
    }  # fmt: skip
    assert summary["failures_by_reason"] == {"backend_rejected": 2}
    assert_counts_add_up(summary, out)
    errors = stored(out, "errors.jsonl")
    assert {e["query"] for e in errors} == {"BROKEN-1 here?", "BROKEN-2 too?"}
    assert all("PermanentBackendError" in e["detail"] for e in errors)
    assert model.inner.retries >= 1  # the flaky one was retried, not recorded as failed

    healthy = ScriptedModel.demo()
    again = run(plan, healthy, tiny_config, out)
    assert again["this_run"]["retried_errors"] == 2 and again["this_run"]["attempted"] == 2
    assert again["counts"]["done"] == 5 and again["counts"]["failed"] == 0
    assert stored(out, "errors.jsonl") == []
    assert len({r["id"] for r in stored(out)}) == len(stored(out)) == 5
    assert_counts_add_up(again, out)


def test_empty_answers_are_failures(tmp_path: Path, tiny_config: SimulationConfig) -> None:
    path = write_queries(tmp_path / "q.jsonl", ["say nothing EMPTY?", "say something?"])
    summary = run(plan_for(path, tiny_config, mode="direct"), FaultyModel(empty=("EMPTY",)),
                  tiny_config, tmp_path)  # fmt: skip
    assert summary["failures_by_reason"] == {"empty_answer": 1}
    assert summary["counts"]["done"] == 1


def test_a_run_that_keeps_failing_stops_early(tmp_path: Path, tiny_config) -> None:
    path = write_queries(tmp_path / "q.jsonl", [f"DOWN {i}?" for i in range(12)])
    model = FaultyModel(always=("DOWN",))
    with pytest.raises(MatrixAlignError, match="Stopped early: 3 samples failed in a row"):
        run(plan_for(path, tiny_config), model, tiny_config, tmp_path, concurrency=1,
            abort_after=3)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert summary["counts"]["failed"] == 3 and summary["counts"]["pending"] == 9
    assert summary["this_run"]["aborted"]
    assert_counts_add_up(summary, tmp_path)


def test_scenes_in_flight_are_bounded_by_concurrency(tmp_path: Path, tiny_config) -> None:
    path = write_queries(tmp_path / "q.jsonl", [f"q{i}?" for i in range(8)])
    seen: list[int] = []
    plan = plan_for(path, tiny_config)
    opts = GenerateOptions(output=tmp_path, export=False, concurrency=3)
    summary = asyncio.run(
        generate(plan, FaultyModel(delay=0.002), tiny_config, opts, model_info={"key": KEY},
                 on_progress=lambda state: seen.append(state.in_flight))
    )  # fmt: skip
    assert max(seen) == 3
    assert summary["counts"]["done"] == 8


def test_an_interrupted_run_keeps_what_finished(tmp_path: Path, tiny_config) -> None:
    path = write_queries(tmp_path / "q.jsonl", [f"q{i}?" for i in range(30)])
    plan = plan_for(path, tiny_config)

    async def interrupted() -> None:
        opts = GenerateOptions(output=tmp_path, export=False, concurrency=2)
        task = asyncio.create_task(
            generate(plan, FaultyModel(delay=0.003), tiny_config, opts, model_info={"key": KEY})
        )
        while len(stored(tmp_path)) < 3:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert summary["this_run"]["interrupted"] is True
    assert 3 <= summary["counts"]["done"] < 30 and summary["counts"]["pending"] > 0
    assert_counts_add_up(summary, tmp_path)


def test_an_output_folder_holds_one_configuration(tmp_path: Path, tiny_config) -> None:
    path = write_queries(tmp_path / "q.jsonl", ["a?"])
    run(plan_for(path, tiny_config), ScriptedModel.demo(), tiny_config, tmp_path / "o")
    check_output(tmp_path / "o", config=tiny_config, model_key=KEY)  # same settings: fine
    with pytest.raises(MatrixAlignError, match=r"n_steps \(1 -> 3\)"):
        check_output(tmp_path / "o", config=SimulationConfig(n_roles=1, n_steps=3), model_key=KEY)
    with pytest.raises(MatrixAlignError, match="model"):
        check_output(tmp_path / "o", config=tiny_config, model_key=model_key("openai", "m"))


def test_faults_from_a_loopback_server(tmp_path: Path, tiny_config: SimulationConfig) -> None:
    """500s, timeouts, malformed bodies and invalid JSON: retried, the rest recorded, the
    batch completes, the counts add up, and a clean rerun finishes the job."""
    from matrix_align.llm.openai_compat import OpenAICompatModel
    from matrix_align.testing import FakeOpenAIServer

    plan = build_plan(
        [SourceSpec.parse("advbench:matrix:8"), SourceSpec.parse("vicuna-bench:direct:6")],
        config=tiny_config,
        model_key="openai:fake-model",
    )

    def model_for(url: str, timeout_s: float = 0.5) -> AccountingModel:
        backend = OpenAICompatModel(base_url=url, model="fake-model", timeout_s=timeout_s)
        return AccountingModel(RetryingModel(backend, max_retries=1, base_delay_s=0.001))

    faults = dict(fail_500=0.2, fail_malformed_body=0.05, fail_invalid_json=0.05,
                  fail_timeout=0.03, hang_s=3.0, seed=5)  # fmt: skip
    with FakeOpenAIServer(**faults) as server:
        model = model_for(server.base_url)
        summary = run(plan, model, tiny_config, tmp_path, concurrency=6, abort_after=0)
        injected = sum(server.fault_counts.values())
    assert injected > 0 and model.inner.retries > 0
    assert_counts_add_up(summary, tmp_path)
    assert summary["counts"]["pending"] == 0
    assert summary["counts"]["done"] > 0
    assert summary["counts"]["planned"] == 14
    for error in stored(tmp_path, "errors.jsonl"):
        assert error["reason"] in summary["failures_by_reason"] and error["detail"]

    with FakeOpenAIServer() as clean:
        # The clean server never hangs: a generous timeout, so a loaded machine fails nothing.
        again = run(plan, model_for(clean.base_url, timeout_s=30), tiny_config, tmp_path,
                    abort_after=0)  # fmt: skip
    assert again["counts"]["done"] == 14 and again["counts"]["failed"] == 0
    assert again["this_run"]["attempted"] == summary["counts"]["failed"]
    assert len({r["id"] for r in stored(tmp_path)}) == len(stored(tmp_path)) == 14


def test_samples_without_a_readable_run_file_are_never_appended_to(
    tmp_path: Path, tiny_config
) -> None:
    path = write_queries(tmp_path / "q.jsonl", ["a?"])
    out = tmp_path / "o"
    run(plan_for(path, tiny_config), ScriptedModel.demo(), tiny_config, out)
    other = SimulationConfig(n_roles=1, n_steps=3)
    run_file = out / "run.json"
    for broken in (None, b"{not json", b"\xff\xfe\x00", b"[1, 2]"):
        if broken is None:
            run_file.unlink()
        else:
            run_file.write_bytes(broken)
        with pytest.raises(MatrixAlignError, match="run.json|run file") as info:
            run(plan_for(path, other), ScriptedModel.demo(), other, out)
        assert "new --output folder" in str(info.value.hint)
    assert len(stored(out)) == 1  # nothing of the other settings was appended


def test_an_evaluation_folder_is_not_a_generate_output(tmp_path: Path, tiny_config) -> None:
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(MatrixAlignError, match="`matrix-align evaluate` output folder"):
        check_output(tmp_path, config=tiny_config, model_key=KEY)


def test_credentials_in_messages_never_reach_errors_jsonl(tmp_path: Path, tiny_config) -> None:
    class Refusing:
        name = "refusing"

        async def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
            raise PermanentBackendError("openai:m at http://bob:s3cret@127.0.0.1:1/v1: HTTP 404")

    path = write_queries(tmp_path / "q.jsonl", ["a?", "b?"])
    run(plan_for(path, tiny_config, mode="direct"), Refusing(), tiny_config, tmp_path)
    details = [e["detail"] for e in stored(tmp_path, "errors.jsonl")]
    assert len(details) == 2 and all("s3cret" not in d and "***@127.0.0.1" in d for d in details)
