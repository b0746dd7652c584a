"""`generate` answers with evaluate's baselines too (training-time baselines of the paper)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from matrix_align.data.generate import ANSWERERS
from matrix_align.systems import SYSTEMS


def test_every_baseline_is_an_answer_mode():
    for name in SYSTEMS:
        assert name in ANSWERERS or name == "vanilla"


def test_critique_revise_dataset_records_the_method_calls(tmp_path: Path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "matrix_align",
            "generate",
            "--backend",
            "scripted",
            "--quiet",
            "--source",
            "advbench:critique-revise:2",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["mode"] == "critique-revise"
        assert record["initial_response"]
        stages = [c["stage"] for c in json.loads(record["trace"])["calls"]]
        assert stages == ["answer", "critique", "revision"]
