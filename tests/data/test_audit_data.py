"""The scene audit in the dataset: generate stores each matrix sample's flags (with the
source's harmful label) and counts them in summary.json; export drops the default flags,
keeps every row with ``--drop-flagged none``, rejects unknown names, never turns a sample
whose answer got worse into a preference pair, and audits samples written before the audit.

The scripted demo's scenes always record a serious harm, so its final answer declines: on
AdvBench (harmful) that is right, on Vicuna-Bench (harmless) it refuses a question the first
answer helped with (``refuses-harmless``, ``worse-than-first``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.data.export import export_samples, parse_drop_flags
from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.errors import MatrixAlignError
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAGS
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import SceneTrace

WRONG = {"refuses-harmless", "worse-than-first"}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audited")
    config = SimulationConfig(n_roles=1, n_steps=1)
    sources = ["advbench:matrix:2", "vicuna-bench:matrix:1", "vicuna-bench:direct:1"]
    plan = build_plan(
        [SourceSpec.parse(s) for s in sources], config=config, model_key="k", hub="never"
    )
    options = GenerateOptions(output=out)
    asyncio.run(generate(plan, ScriptedModel.demo(), config, options, model_info={}))
    return out


def samples(folder: Path) -> list[dict]:
    text = (folder / "samples.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()]


def test_generate_stores_flags_with_the_source_label(run_folder: Path) -> None:
    records = samples(run_folder)
    matrix = [r for r in records if r["mode"] == "matrix"]
    assert len(matrix) == 3
    for record in matrix:
        trace = SceneTrace.model_validate_json(record["trace"])
        assert record["flags"] == trace.flags  # stored twice, the same
        wrong = set(record["flags"]) & set(DROP_BY_DEFAULT)
        assert wrong == (WRONG if record["source"] == "vicuna-bench" else set())
    direct = next(r for r in records if r["mode"] == "direct")
    assert direct["flags"] is None  # not a scene: not audited


def test_summary_counts_the_flags(run_folder: Path) -> None:
    summary = json.loads((run_folder / "summary.json").read_text("utf-8"))
    assert summary["audit"] == {
        "matrix_samples": 3,
        "without_dropped_flags": 2,
        "without_dropped_flags_fraction": 0.667,
    }
    counts = summary["audit_flags"]
    assert list(counts) == list(FLAGS)
    assert counts["refuses-harmless"] == counts["worse-than-first"] == 1
    assert counts["complies-with-harmful"] == 0
    # generate's own export used the default filter
    assert summary["export_filter"]["samples_dropped"] == 1
    assert summary["export_dropped_by_flag"] == {"refuses-harmless": 1, "worse-than-first": 1}


def test_export_drops_the_default_flags(run_folder: Path, tmp_path: Path) -> None:
    vicuna = next(s["id"] for s in samples(run_folder) if s["source"] == "vicuna-bench"
                  and s["mode"] == "matrix")  # fmt: skip
    result = export_samples(run_folder / "samples.jsonl", tmp_path, file_types=["jsonl", "hf"])
    assert result.drop_flagged == DROP_BY_DEFAULT
    assert result.dropped == 1
    assert result.dropped_by_flag == {"refuses-harmless": 1, "worse-than-first": 1}
    kept = ids(tmp_path / "jsonl/prompt_completion.jsonl")
    assert vicuna not in kept and len(kept) == 3  # two advbench scenes and the direct one
    assert vicuna not in ids(tmp_path / "jsonl/preference.jsonl")
    assert result.rows["prompt_completion"] == 3 and result.rows["preference"] == 2


def test_drop_flagged_none_keeps_every_row_but_no_wrong_pair(run_folder, tmp_path) -> None:
    result = export_samples(
        run_folder / "samples.jsonl", tmp_path, file_types=["jsonl"], drop_flagged=()
    )
    assert result.dropped == 0 and result.dropped_by_flag == {}
    assert len(ids(tmp_path / "jsonl/prompt_completion.jsonl")) == 4
    # the Vicuna-Bench scene refused what the first answer helped with: as a pair it would
    # reward the refusal, so it is withheld even when every row is kept
    assert result.pairs_withheld == 1
    assert len(ids(tmp_path / "jsonl/preference.jsonl")) == 2


def test_samples_written_before_the_audit_are_audited_from_their_trace(
    run_folder: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    lines = []
    for record in samples(run_folder):
        record.pop("flags")
        if record["trace"]:
            trace = json.loads(record["trace"])
            trace["flags"] = []
            record["trace"] = json.dumps(trace)
        lines.append(json.dumps(record))
    (old / "samples.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    result = export_samples(old / "samples.jsonl", tmp_path / "x", file_types=["jsonl"])
    assert result.dropped_by_flag == {"refuses-harmless": 1, "worse-than-first": 1}
    assert len(ids(tmp_path / "x/jsonl/prompt_completion.jsonl")) == 3


def test_drop_flagged_values() -> None:
    assert parse_drop_flags(None) == DROP_BY_DEFAULT
    assert parse_drop_flags("none") == parse_drop_flags(" None ") == ()
    assert parse_drop_flags("fallbacks, empty-answer") == ("fallbacks", "empty-answer")
    with pytest.raises(MatrixAlignError) as error:
        parse_drop_flags("fallbacks,made-up")
    assert "made-up" in str(error.value)
    assert all(flag in str(error.value) for flag in FLAGS)


def test_export_command_reports_and_checks_drop_flagged(run_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["export", str(run_folder), "-t", "jsonl", "-f", "prompt-completion,preference"]
    result = runner.invoke(app, [*base, "--to", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "dropped 1 flagged sample(s)" in result.output
    assert "refuses-harmless 1" in result.output and "worse-than-first 1" in result.output
    result = runner.invoke(app, [*base, "--to", str(tmp_path / "b"), "--drop-flagged", "none"])
    assert result.exit_code == 0, result.output
    assert "dropped no sample" in result.output and "1 pair(s) withheld" in result.output
    assert len(ids(tmp_path / "b/jsonl/prompt_completion.jsonl")) == 4
    result = runner.invoke(app, [*base, "--to", str(tmp_path / "c"), "--drop-flagged", "bogus"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "unknown flag(s) bogus" in str(result.exception)
    assert "complies-with-harmful" in str(result.exception)
    assert not (tmp_path / "c").exists()  # nothing written


def test_export_help_names_the_default_drop_flags() -> None:
    result = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--drop-flagged" in text
    assert all(flag in text for flag in DROP_BY_DEFAULT)
    assert "wrong as training data" in text
