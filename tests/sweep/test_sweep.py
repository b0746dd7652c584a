"""``sweep``: one tagged evaluate entry per grid cell in one folder, judged against the base
entry, resumable cell by cell and item by item, with its table and figure (scripted only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.judges import Judge
from matrix_align.evaluate.tasks import EvalSettings, JudgeSpec
from matrix_align.folders.results import read_results
from matrix_align.sweep.grid import parse_grid
from matrix_align.sweep.report import SWEEP_METRICS, collect, main_metric
from matrix_align.sweep.run import SWEEP_FILE, SweepSpec, prepare, run_sweep
from tests.conftest import run_main
from tests.evaluate.conftest import answering_model, judge_model, prefers

GRID = ["roles=1,2", "steps=1,2"]
TAGS = ["roles=1,steps=1", "roles=1,steps=2", "roles=2,steps=1", "roles=2,steps=2"]


def spec_for(output: Path, tiny_config, metrics: list[str], grid: list[str] = GRID) -> SweepSpec:
    template = EvalSettings(
        systems=["matrix"],
        benchmarks=["advbench"],
        output=output,
        model_key="scripted:actor",
        config=tiny_config,
        metrics=metrics,
        limit=2,
        hub="never",
        concurrency=4,
    )
    return SweepSpec(axes=parse_grid(grid), template=template)


def judges() -> list[JudgeSpec]:
    # The demo MATRIX answers decline ("I can't help with the risky part..."), vanilla
    # complies: a judge that prefers the decline makes every cell win.
    return [JudgeSpec("judge:j", Judge(judge_model(PairwiseReply=prefers("can't")), key="judge:j"))]


async def test_a_sweep_judges_every_cell_against_the_base(tmp_path, tiny_config) -> None:
    out = tmp_path / "sweep"
    spec = spec_for(out, tiny_config, ["refusal", "pairwise"])
    seen: list[tuple[str, bool]] = []
    result = await run_sweep(
        spec,
        answering_model(),
        judges(),
        on_unit=lambda name, entry, skipped: seen.append((entry, skipped)),
    )
    assert seen == [("vanilla", False), *((f"matrix@{t}", False) for t in TAGS)]
    answers, judgements = read_results(out)
    assert sorted({a.entry for a in answers}) == sorted(["vanilla", *(f"matrix@{t}" for t in TAGS)])
    assert {a.item_id for a in answers} == {"advbench/0", "advbench/1"}
    pairs = [j for j in judgements if j.metric == "pairwise"]
    assert len(pairs) == 8 and {j.entry for j in pairs} == {"vanilla"}  # the base is the reference
    cell = next(a for a in answers if a.entry == "matrix@roles=2,steps=1")
    assert (cell.settings["simulation"]["n_roles"], cell.settings["simulation"]["n_steps"]) == (
        2,
        1,
    )

    rows, state, judge = collect(out)
    assert judge == "judge:j" and main_metric(rows) == "win"
    assert [r.entry for r in rows] == ["vanilla", *(f"matrix@{t}" for t in TAGS)]
    win = rows[1].share("win")
    assert win[0] == 100 and win[2] == 2 and win[1] is not None
    table = (out / "sweep.md").read_text()
    assert "| 2 | 1 | `matrix@roles=2,steps=1` | 100 [34-100] (n=2) |" in table
    assert result.figure is not None and result.figure.read_bytes()[:4] == b"\x89PNG"
    cells = json.loads((out / SWEEP_METRICS).read_text())["cells"]
    assert {c["statistic"] for c in cells} >= {"win", "refused", "cost"}
    assert "matrix@roles=1,steps=2" in (out / "report.md").read_text()

    # A rerun of the same sweep plans nothing: every cell is skipped whole.
    seen.clear()
    await run_sweep(
        spec,
        answering_model(),
        judges(),
        on_unit=lambda name, entry, skipped: seen.append((entry, skipped)),
    )
    assert all(skipped for _, skipped in seen)
    assert len(read_results(out)[0]) == len(answers)


async def test_a_cell_cut_short_resumes_item_by_item(tmp_path, tiny_config) -> None:
    """As after kill -9 in the middle of a cell: part of its answers on disk, the cell not
    marked finished. The rerun skips the finished cells and answers only what is missing."""
    out = tmp_path / "sweep"
    spec = spec_for(out, tiny_config, ["refusal"])
    await run_sweep(spec, answering_model(), [])
    lines = (out / "results.jsonl").read_text().splitlines()
    victim = "matrix@roles=2,steps=2"
    dropped = [
        ln
        for ln in lines
        if json.loads(ln).get("entry") == victim and json.loads(ln).get("item_id") == "advbench/1"
    ]
    assert dropped
    (out / "results.jsonl").write_text("\n".join(ln for ln in lines if ln not in dropped) + "\n")
    state = json.loads((out / SWEEP_FILE).read_text())
    state["cells"]["roles=2,steps=2"]["finished"] = False
    (out / SWEEP_FILE).write_text(json.dumps(state))

    seen: list[tuple[str, bool]] = []
    result = await run_sweep(
        spec,
        answering_model(),
        [],
        on_unit=lambda name, entry, skipped: seen.append((entry, skipped)),
    )
    assert [e for e, skipped in seen if not skipped] == [victim]
    ran = next(o for o in result.outcomes if o.entry == victim).result
    assert ran is not None and ran.answer_stats is not None
    assert (ran.answer_stats.completed, ran.answer_stats.skipped_done) == (1, 1)
    assert json.loads((out / SWEEP_FILE).read_text())["cells"]["roles=2,steps=2"]["finished"]


async def test_a_grown_grid_runs_only_its_new_cells(tmp_path, tiny_config) -> None:
    out = tmp_path / "sweep"
    await run_sweep(spec_for(out, tiny_config, ["refusal"], ["roles=1"]), answering_model(), [])
    seen: list[tuple[str, bool]] = []
    await run_sweep(
        spec_for(out, tiny_config, ["refusal"], ["roles=1,2"]),
        answering_model(),
        [],
        on_unit=lambda name, entry, skipped: seen.append((entry, skipped)),
    )
    assert seen == [("vanilla", True), ("matrix@roles=1", True), ("matrix@roles=2", False)]
    rows, _, _ = collect(out)
    assert main_metric(rows) == "refused" and [r.values for r in rows[1:]] == [
        {"roles": "1"},
        {"roles": "2"},
    ]


def test_checks_before_any_model(tmp_path, tiny_config) -> None:
    spec = spec_for(tmp_path / "s", tiny_config, ["refusal", "pairwise"])
    with pytest.raises(MatrixAlignError, match="need a model judge"):
        prepare(spec, 0)
    spec.base = "matrix"
    with pytest.raises(MatrixAlignError, match="base system cannot be matrix"):
        prepare(spec, 1)


def test_the_command_on_the_scripted_backend(monkeypatch, capsys, tmp_path) -> None:
    out = tmp_path / "sweep"
    args = (
        "sweep",
        "--grid",
        "roles=1,2",
        "--grid",
        "steps=1",
        "--backend",
        "scripted",
        "-q",
        "-B",
        "advbench",
        "--limit",
        "2",
        "--hub",
        "never",
        "--metrics",
        "refusal",
        "--max-tokens",
        "64",
        "-o",
        str(out),
    )
    code, text = run_main(monkeypatch, capsys, *args)
    assert code == 0, text
    assert "matrix@roles=2,steps=1: running" in text and "sweep figure:" in text
    assert (out / "plots" / "sweep.png").is_file() and (out / "sweep.md").is_file()
    code, text = run_main(monkeypatch, capsys, *args)
    assert code == 0 and text.count("already finished, skipped") == 3
    code, text = run_main(monkeypatch, capsys, "sweep", "--grid", "rolez=1", "-o", str(out))
    assert code == 2 and "Unknown grid setting 'rolez'" in text
    code, text = run_main(monkeypatch, capsys, "sweep", "--help")
    assert code == 0 and "--grid" in text and "--subset" in text


async def test_the_table_of_a_sweep_cut_short_lists_the_cells_not_started(
    tmp_path, tiny_config
) -> None:
    out = tmp_path / "sweep"
    await run_sweep(spec_for(out, tiny_config, ["refusal"], ["roles=1"]), answering_model(), [])
    state = json.loads((out / SWEEP_FILE).read_text())
    state["grid"][0]["values"] = ["1", "2"]  # as if killed before the second cell started
    (out / SWEEP_FILE).write_text(json.dumps(state))
    rows, _, _ = collect(out)
    assert [(r.entry, r.values, r.answers) for r in rows[1:]] == [
        ("matrix@roles=1", {"roles": "1"}, 2),
        ("matrix@roles=2", {"roles": "2"}, 0),
    ]
