"""The tables are computed exactly from known judgements, and the report shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.evaluate.judges import REFUSAL_DETECTOR
from matrix_align.evaluate.report import compute_tables, render_answers, render_report, write_plots
from matrix_align.folders.results import AnswerRecord, JudgementRecord, Verdict

ENTRIES = ("matrix", "vanilla", "critique-revise")


def answer(entry: str, item: int, bench: str = "advbench", **meta) -> AnswerRecord:
    calls = {"matrix": 20, "vanilla": 1, "critique-revise": 3}[entry]
    return AnswerRecord(
        id=f"{bench}-{entry}-{item}",
        benchmark=bench,
        item_id=f"{bench}/{item}",
        entry=entry,
        system=entry,
        model="scripted:default",
        prompt=f"prompt {item}",
        answer=f"{entry} answer {item}",
        metadata={"harmful": True, **meta},
        usage={
            "calls": calls,
            "prompt_tokens": 100 * calls,
            "completion_tokens": 10 * calls,
            "wall_s": 1.0,
        },
    )


def judged(metric: str, judge: str, answers: list[AnswerRecord], verdict: Verdict, turn: int = 1):
    first = answers[0]
    return JudgementRecord(
        id=f"{metric}-{judge}-{'-'.join(a.id for a in answers)}-{turn}",
        metric=metric,
        judge=judge,
        benchmark=first.benchmark,
        item_id=first.item_id,
        prompt=first.prompt,
        entry=first.entry,
        baseline=answers[1].entry if len(answers) > 1 else None,
        answer_ids=[a.id for a in answers],
        turn=turn,
        verdict=verdict,
        usage={"calls": 2, "prompt_tokens": 50, "completion_tokens": 5},
    )


def win(label: str | None) -> Verdict:
    return Verdict(scored=label is not None, label=label)


@pytest.fixture
def records() -> tuple[list[AnswerRecord], list[JudgementRecord]]:
    answers = [answer(e, i) for e in ENTRIES for i in range(4)]
    by = {(a.entry, int(a.item_id.split("/")[1])): a for a in answers}
    judgements: list[JudgementRecord] = []
    # matrix vs vanilla on 4 items: win, win, tie, unscored -> 2/1/0 of 3 scored.
    for i, label in enumerate(["win", "win", "tie", None]):
        judgements.append(judged("pairwise", "J1", [by["matrix", i], by["vanilla", i]], win(label)))
    # matrix vs critique-revise: win, lose, lose, tie.
    for i, label in enumerate(["win", "lose", "lose", "tie"]):
        pair = [by["matrix", i], by["critique-revise", i]]
        judgements.append(judged("pairwise", "J1", pair, win(label)))
    # harmlessness scores for vanilla: 9, 3, 7, unscored -> 2 of 3 harmless, mean 19/3.
    for i, score in enumerate([9, 3, 7, None]):
        verdict = (
            Verdict(scored=True, score=score, label="harmless" if score >= 7 else "harmful")
            if score
            else Verdict(scored=False)
        )
        judgements.append(judged("harmlessness", "J1", [by["vanilla", i]], verdict))
    # refusal detector: vanilla refuses 1 of 4.
    for i in range(4):
        label = "refusal" if i == 0 else "compliance"
        judgements.append(
            judged(
                "refusal", REFUSAL_DETECTOR, [by["vanilla", i]], Verdict(scored=True, label=label)
            )
        )
    # A second judge agreeing on 3 of the 4 scored pairwise verdicts of matrix vs critique-revise.
    for i, label in enumerate(["win", "lose", "win", "tie"]):
        pair = [by["matrix", i], by["critique-revise", i]]
        judgements.append(judged("pairwise", "J2", pair, win(label)))
    return answers, judgements


def test_tables_are_exact(records) -> None:
    answers, judgements = records
    t = compute_tables(answers, judgements, reference="matrix", judge_order=["J1"])
    vs_vanilla = t.pairwise[("J1", "vanilla", "advbench")]
    assert dict(vs_vanilla.labels) == {"win": 2, "tie": 1} and vs_vanilla.unscored == 1
    assert vs_vanilla.percent("win") == pytest.approx(200 / 3)
    assert vs_vanilla.percent("lose") == 0.0
    vs_cr = t.pairwise[("J1", "critique-revise", "advbench")]
    assert (vs_cr.percent("win"), vs_cr.percent("tie"), vs_cr.percent("lose")) == (25.0, 25.0, 50.0)

    harmless = t.harmless[("J1", "vanilla", "advbench")]
    assert harmless.percent("harmless") == pytest.approx(200 / 3) and harmless.unscored == 1
    assert t.harmless_scores[("J1", "vanilla", "advbench")].mean == pytest.approx(19 / 3)
    assert t.refusal[("vanilla", "advbench")].percent("refusal") == 25.0

    assert t.cost["matrix"].per_response(t.cost["matrix"].usage.calls) == 20
    assert t.cost["vanilla"].responses == 4
    assert t.unscored[("J1", "pairwise")] == (8, 1)
    assert t.judges == ["J1", "J2"]

    ((metric, first, second, agree),) = t.agreements
    assert (metric, first, second) == ("pairwise", "J1", "J2")
    assert agree.n == 4 and agree.percent == 75.0


def test_report_shows_paper_style_cells(records, tmp_path: Path) -> None:
    answers, judgements = records
    t = compute_tables(answers, judgements, reference="matrix", judge_order=["J1"])
    text = render_report(t, {"models": {"matrix": "scripted:default"}}, [], [])
    assert "## matrix vs baselines: win / tie / lose (%), judge J1" in text
    # Wilson intervals on the win counts (the percentile bootstrap said [0-100] and [0-75]).
    assert "| vanilla | 67 [21-94] / 33 / 0 (n=3, 1 unscored) |" in text
    assert "| critique-revise | 25 [5-70] / 25 / 50 (n=4) |" in text
    assert "| vanilla | 67 [21-94] (6.3 [3.0-9.0]), 1 unscored |" in text
    assert "## Agreement between judges" in text
    assert "| pairwise | J1 | J2 | 4 | 75.0 | " in text
    side = render_answers(answers, judgements, t)
    assert "pairwise vs matrix (J1): lose" in side  # a matrix win, seen from vanilla's side
    assert side.index("**matrix**") < side.index("**vanilla**")


def test_superseded_answers_are_left_out(records) -> None:
    answers, judgements = records
    kept = [a for a in answers if a.entry != "vanilla"]
    t = compute_tables(kept, judgements, reference="matrix")
    assert ("J1", "vanilla", "advbench") not in t.pairwise
    assert not t.refusal


def test_xstest_over_refusal_split_by_label() -> None:
    answers = [
        answer("vanilla", 0, "xstest", label="safe", harmful=False),
        answer("vanilla", 1, "xstest", label="safe", harmful=False),
        answer("vanilla", 2, "xstest", label="unsafe"),
    ]
    labels = ["refusal", "compliance", "refusal"]
    judgements = [
        judged("refusal", REFUSAL_DETECTOR, [a], Verdict(scored=True, label=label))
        for a, label in zip(answers, labels, strict=True)
    ]
    t = compute_tables(answers, judgements)
    assert t.xstest[("vanilla", "safe")].percent("refusal") == 50.0
    assert t.xstest[("vanilla", "unsafe")].percent("refusal") == 100.0


def test_plots_are_written(records, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    answers, judgements = records
    t = compute_tables(answers, judgements, reference="matrix", judge_order=["J1"])
    written = write_plots(t, tmp_path / "plots")
    assert {"plots/pairwise.png", "plots/harmless_rate.png", "plots/refusal_rate.png"} <= set(
        written
    )
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_statistic_plot_draws_the_metrics_json_intervals(
    records, tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.container import BarContainer, ErrorbarContainer
    from matplotlib.figure import Figure

    from matrix_align.evaluate.report.metrics_json import metric_cells

    drawn: dict[str, Figure] = {}
    save = Figure.savefig
    monkeypatch.setattr(
        Figure,
        "savefig",
        lambda fig, path, **kw: (drawn.update({Path(path).name: fig}), save(fig, path, **kw)),
    )
    answers, judgements = records
    t = compute_tables(answers, judgements, reference="matrix", judge_order=["J1"])
    write_plots(t, tmp_path / "plots")
    for name in ("pairwise.png", "harmless_rate.png", "refusal_rate.png"):
        containers = [c for ax in drawn[name].axes for c in ax.containers]
        bars = [c for c in containers if isinstance(c, BarContainer)]
        assert any(isinstance(c, ErrorbarContainer) for c in containers) or all(
            b.errorbar is not None for b in bars
        ), name
    # The refusal bar of vanilla on advbench spans the metrics.json interval (in percent).
    cell = next(
        c for c in metric_cells(t) if c.get("table") == "refusal" and c["entry"] == "vanilla"
    )
    ax = drawn["refusal_rate.png"].axes[0]
    segments = [
        seg
        for c in ax.containers
        if isinstance(c, BarContainer) and c.errorbar
        for seg in c.errorbar.lines[2][0].get_segments()
    ]
    spans = [(round(s[0][1], 2), round(s[1][1], 2)) for s in segments]
    assert (round(100 * cell["low"], 2), round(100 * cell["high"], 2)) in spans


def test_metrics_cells_carry_n_value_and_interval(records, tmp_path: Path) -> None:
    from matrix_align.evaluate.report.metrics_json import metric_cells, write_metrics

    answers, judgements = records
    t = compute_tables(answers, judgements, reference="matrix", judge_order=["J1"])
    cells = metric_cells(t)

    def find(**where):
        (cell,) = [c for c in cells if all(c.get(k) == v for k, v in where.items())]
        return cell

    refusal = find(table="refusal", entry="vanilla", statistic="refusal_rate")
    assert (refusal["n"], refusal["value"], refusal["interval"]) == (4, 0.25, "wilson")
    assert (refusal["low"], refusal["high"]) == pytest.approx((0.0456, 0.6994), abs=1e-4)
    win = find(table="pairwise", baseline="vanilla", judge="J1", statistic="win")
    assert (win["n"], win["unscored"], win["interval"]) == (3, 1, "wilson")
    assert win["value"] == pytest.approx(0.6667, abs=1e-4)
    assert win["low"] <= win["value"] <= win["high"]
    mean = find(table="harmless", entry="vanilla", statistic="mean_score")
    assert mean["n"] == 3 and mean["low"] <= mean["value"] <= mean["high"]
    assert find(table="agreement", metric="pairwise")["kappa"] is not None
    assert find(table="cost", entry="matrix", statistic="calls_per_response")["value"] == 20

    path = write_metrics(tmp_path, t)
    data = json.loads(path.read_text())
    assert data["cells"] == json.loads(json.dumps(cells)) and data["reference"] == "matrix"
    assert metric_cells(t) == cells  # the seeded bootstrap gives the same file every time


def test_counts_stability_over_items_sampled_more_than_once() -> None:
    from matrix_align.evaluate.figures import Counts
    from matrix_align.folders.results import Verdict

    counts = Counts()
    for item, label in [("a", "refusal"), ("a", "refusal"), ("b", "refusal"), ("b", "answer"),
                        ("c", "answer")]:  # fmt: skip
        counts.add(Verdict(label=label, scored=True), item)
    assert counts.stability() == (1, 2)  # c was sampled once: not counted
    single = Counts()
    single.add(Verdict(label="refusal", scored=True), "a")
    assert single.stability() is None
