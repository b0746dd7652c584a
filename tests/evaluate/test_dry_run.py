"""``evaluate --dry-run``: the plan (items, systems, judges) and its estimated calls and
tokens, checked against the real scripted run; a second estimate reads the folder's own
figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str]:
    return run_main(monkeypatch, capsys, "evaluate", *args)


def estimated(text: str) -> tuple[int, int]:
    match = re.search(r"estimated: ([\d,]+) calls, ([\d,]+) prompt \+ ([\d,]+) completion", text)
    assert match, text
    calls, prompt, completion = (int(g.replace(",", "")) for g in match.groups())
    return calls, prompt + completion


def recorded(folder: Path) -> tuple[int, int]:
    calls = tokens = 0
    for line in (folder / "results.jsonl").read_text("utf-8").splitlines():
        usage = json.loads(line).get("usage") or {}
        calls += usage.get("calls", 0)
        tokens += usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    return calls, tokens


def row(text: str, label: str) -> list[str]:
    """The cells after ``label`` in its table row (the output with whitespace collapsed)."""
    cells = text.split(f"│ {label} │", 1)[1].split(" │ │", 1)[0].split(" │ ")
    return [c.strip(" │") for c in cells]


def assert_close(estimate: int, real: int, what: str) -> None:
    assert real > 0 and abs(estimate - real) <= 0.25 * real, f"{what}: {estimate} vs {real}"


def test_the_estimate_is_within_25_percent_of_the_scripted_run(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    common = ("--backend", "scripted", "--judge-backend", "scripted", "--hub", "never",
              "-B", "advbench,mt-bench", "--limit", "3", "--roles", "1", "--steps", "1", "-q",
              "-o", str(out))  # fmt: skip
    args = (*common, "-S", "vanilla,matrix,critique-revise")
    code, text = run_cli(monkeypatch, capsys, *args, "--dry-run", "--price-in", "1",
                         "--price-out", "4")  # fmt: skip
    assert code == 0, text
    assert not out.exists()
    assert "plan: advbench 3 items, mt-bench 3 items; systems vanilla, matrix," in text
    assert "judges: scripted:default" in text and "estimated cost: $" in text
    assert "mt-bench: matrix" in text and "scripted:default: pairwise" in text
    calls, tokens = estimated(text)
    code, text = run_cli(monkeypatch, capsys, *args)
    assert code == 0, text
    real_calls, real_tokens = recorded(out)
    assert_close(calls, real_calls, "calls")
    assert_close(tokens, real_tokens, "tokens")

    # Adding a system: the finished answers are not counted again, and the new ones are
    # estimated from the folder's figures where it has them.
    code, text = run_cli(monkeypatch, capsys, *common, "-S", "vanilla,matrix,debate", "--dry-run")
    assert code == 0, text
    vanilla = row(text, "advbench: vanilla")
    assert vanilla[:3] == ["3", "0", "1.0"] and vanilla[-1] == "measured (3)"
    assert row(text, "advbench: debate")[:2] == ["3", "3"]
    assert row(text, "advbench: debate")[-1] == "rehearsed (2)"


def test_dry_run_and_rejudge_do_not_mix(monkeypatch, capsys, tmp_path: Path) -> None:
    code, text = run_cli(monkeypatch, capsys, "--rejudge", str(tmp_path), "--judge-backend",
                         "scripted", "--dry-run")  # fmt: skip
    assert code == 2 and "not a re-judging" in text


def judge_rows(text: str, judge: str) -> list[list[str]]:
    """The judgement table's rows of ``judge`` (the cells after each label)."""
    table = text.split("judgements (calls and tokens per item)", 1)[1]
    labels = re.findall(rf"│ ({re.escape(judge)}: [\w-]+) +│", table)
    return [row(table, label) for label in labels]


def judge_calls(folder: Path) -> int:
    records = [
        json.loads(line) for line in (folder / "results.jsonl").read_text("utf-8").splitlines()
    ]
    return sum(r["usage"].get("calls", 0) for r in records if r.get("kind") == "judgement")


def classifier_reply(body: dict, schema: dict | None) -> str:
    """A loopback harm classifier: Llama Guard's format when sent a conversation (the answer
    last), HarmBench's yes/no when asked its question."""
    last = body["messages"][-1]
    if last["role"] == "assistant":
        return "unsafe\nS2" if "direct answer" in last["content"] else "safe"
    return "Yes" if "direct answer" in last["content"] else "No"


@pytest.mark.parametrize(
    ("metrics", "rows"),
    [((), 3),  # the defaults: pairwise, harmlessness, mt-bench
     (("--metrics", "refusal,asr-harmbench,asr-llama-guard"), 2)],  # the harm classifiers
)  # fmt: skip
def test_judge_calls_are_estimated_within_10_percent(
    monkeypatch, capsys, tmp_path: Path, metrics: tuple[str, ...], rows: int
) -> None:
    # A judge that answers its schemas (the loopback server) makes one call per question
    # (two for pairwise); the estimate once counted the scripted double's re-asks, 2.0
    # calls per structured verdict against 1.0 for real. A classifier makes one call per
    # judgement, in its own format.
    from matrix_align.testing import FakeOpenAIServer, default_responder

    def reply(body: dict, schema: dict | None) -> str:
        return default_responder(body, schema) if schema else classifier_reply(body, schema)

    out = tmp_path / "eval"
    with FakeOpenAIServer(responder=reply) as server:
        judge = f"openai:{server.models[0]}"
        args = ("--backend", "scripted", "--judge-backend", "openai", "--judge-base-url",
                server.base_url, "--judge-model", server.models[0], "--hub", "never",
                "-B", "advbench,mt-bench", "--limit", "3", "--roles", "1", "--steps", "1",
                "-q", "-S", "vanilla,matrix", "-o", str(out), *metrics)  # fmt: skip
        code, text = run_cli(monkeypatch, capsys, *args, "--dry-run")
        assert code == 0, text
        found = judge_rows(text, judge)
        assert len(found) == rows and all("re-asks 0%" in r[5] for r in found), text
        estimate = sum(float(r[2]) * int(r[1]) for r in found)
        code, text = run_cli(monkeypatch, capsys, *args)
        assert code == 0, text
    real = judge_calls(out)
    assert real > 0 and abs(estimate - real) <= 0.1 * real, f"{estimate} vs {real}"


def test_the_classifiers_answer_a_loopback_server_in_their_formats(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    from matrix_align.testing import FakeOpenAIServer

    out = tmp_path / "eval"
    with FakeOpenAIServer(responder=classifier_reply) as server:
        args = ("--backend", "scripted", "--judge-backend", "openai", "--judge-base-url",
                server.base_url, "--judge-model", "fake-model", "--hub", "never",
                "-B", "advbench", "--limit", "2", "-q", "-S", "vanilla", "-o", str(out),
                "--metrics", "asr-harmbench,asr-llama-guard")  # fmt: skip
        code, text = run_cli(monkeypatch, capsys, *args)
        assert code == 0, text
        bodies = [r["body"] for r in server.requests]
    guard = [b for b in bodies if b["messages"][-1]["role"] == "assistant"]
    asked = [b for b in bodies if b["messages"][-1]["role"] == "user"]
    assert len(guard) == len(asked) == 2
    assert all([m["role"] for m in b["messages"]] == ["user", "assistant"] for b in guard)
    assert all(b["messages"][0]["role"] == "system" for b in asked)
    assert all(b["max_tokens"] <= 32 and b["temperature"] == 0 for b in bodies)
    report = (out / "report.md").read_text("utf-8")
    assert "## Attack-success rate (%), judge openai:fake-model" in report
    assert report.count("| vanilla | 100 [34-100] (n=2) |") == 2  # vanilla's plain answers


def test_the_reask_rate_is_read_from_the_stored_judgements() -> None:
    from matrix_align.evaluate.dry_run import reask_rate
    from matrix_align.folders.results import JudgementRecord, Verdict
    from matrix_align.simulation.trace import ModelCall

    def judgement(judge: str, *attempts: int) -> JudgementRecord:
        calls = [ModelCall(stage="judge", attempt=a, messages=[]) for a in attempts]
        return JudgementRecord(
            id=f"{judge}{len(attempts)}", metric="m", judge=judge, benchmark="b", item_id="i",
            prompt="p", entry="e", answer_ids=[], verdict=Verdict(scored=True), calls=calls,
        )  # fmt: skip

    stored = [judgement("a", 1, 2), judgement("a", 1), judgement("a", 1), judgement("b", 1, 2)]
    assert reask_rate(stored, "a") == pytest.approx(1 / 3)
    assert reask_rate(stored, "c") == 0.0
