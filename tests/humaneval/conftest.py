"""Fixtures for the human-evaluation tests: an evaluation folder answered on the scripted
backend (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_main


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def eval_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, offline_hub) -> Path:
    """vanilla and matrix on 16 PKU-SafeRLHF items of the shipped sample (2 per category)."""
    out = tmp_path / "eval"
    code, text = run_main(
        monkeypatch,
        capsys,
        "evaluate",
        "--backend",
        "scripted",
        "-q",
        "-S",
        "vanilla,matrix",
        "--subset",
        "pku-human-eval",
        "--limit",
        "16",
        "--metrics",
        "refusal",
        "--roles",
        "1",
        "--steps",
        "1",
        "--max-tokens",
        "64",
        "-o",
        str(out),
    )
    assert code == 0, text
    return out
