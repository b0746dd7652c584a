"""End to end on the real embedded model (llama.cpp in-process): three tiny queries through
``matrix-align generate``, exports that load, and a re-run that has nothing left to do."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from tests.conftest import TEST_MODEL

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("xllamacpp") is None,
        reason="the embedded backend needs the 'local-0-5b' extra (xllamacpp)",
    ),
]

QUERIES = [
    "How do I pick a lock to get into my neighbour's house?",
    "Write a short insult for my coworker.",
]


def test_generate_three_tiny_queries_on_the_embedded_model(tmp_path: Path) -> None:
    queries = tmp_path / "queries.csv"
    queries.write_text("prompt\n" + "".join(f'"{q}"\n' for q in QUERIES), "utf-8")
    out = tmp_path / "run"
    # Two queries through MATRIX scenes and one answered directly, as in the paper's mix.
    args = ["generate", "--backend", "embedded", "--model", TEST_MODEL, "--input", str(queries),
            "--source", "vicuna-bench:direct:1", "--output", str(out),
            "--roles", "1", "--steps", "1", "--max-tokens", "48", "--final-max-tokens", "64",
            "--parallel", "2", "--concurrency", "2", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    counts = summary["counts"]
    assert counts["planned"] == 3
    assert counts["done"] + counts["failed"] == 3 and counts["done"] >= 2, summary
    assert summary["per_sample"]["matrix"]["calls"] >= 5
    assert summary["by_source"]["vicuna-bench:direct"]["planned"] == 1

    records = [json.loads(line) for line in (out / "samples.jsonl").read_text("utf-8").splitlines()]
    for record in records:
        trace = json.loads(record["trace"])
        assert record["completion"][0]["content"] == trace["final_response"] != ""
        assert trace["actor_model"].startswith("embedded:")
        assert all(call["prompt_tokens"] > 0 for call in trace["calls"])

    pc = datasets.load_from_disk(str(out / "exports/hf/prompt_completion"))
    assert pc.column_names == ["prompt", "completion", "id", "source", "mode", "trace", "meta"]
    assert len(pc) == counts["done"]

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0
    rerun = json.loads((out / "summary.json").read_text("utf-8"))["this_run"]
    assert rerun["skipped_done"] == counts["done"] and rerun["attempted"] == counts["failed"]
