"""``--limit`` as a count or a fraction, and benchmark names in inspect's and inspect_evals'
spellings, in every command that takes them (the plans of ``--dry-run``: no model call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.data.sources import limit_count, load_source, select, source_name
from tests.conftest import run_main


def test_a_fraction_keeps_that_share_rounded_and_at_least_one() -> None:
    assert limit_count(None, 50) == 50
    assert limit_count(7, 50) == 7
    assert limit_count(0.1, 50) == 5
    assert limit_count(0.1, 4) == 1  # never none
    records = load_source("advbench", hub="never").records
    assert select(records, limit=0.5, shuffle=False, seed=0) == records[: len(records) // 2]


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("hh-harmless", "hh-harmless"),
        ("hh_harmless", "hh-harmless"),  # inspect's task name
        ("strong_reject", "strongreject"),  # inspect_evals' task name
        ("PKU_SafeRLHF", "pku-saferlhf"),
        ("mt_bench", "mt-bench"),
        ("no-such-bench", "no-such-bench"),  # left for the caller's own error
    ],
)
def test_names_are_matched_without_dashes_underscores_or_case(given: str, name: str) -> None:
    assert source_name(given) == name


def test_load_source_takes_any_spelling() -> None:
    assert load_source("hh_harmless", hub="never").name == "hh-harmless"


def test_evaluate_plan_with_a_fraction_and_other_spellings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hh = load_source("hh-harmless", hub="never").available
    sr = load_source("strongreject", hub="never").available
    code, text = run_main(
        monkeypatch, capsys, "evaluate", "--backend", "scripted", "--hub", "never",
        "-B", "hh_harmless,strong_reject", "--limit", "0.1", "--metrics", "refusal",
        "--dry-run", "-o", str(tmp_path / "eval"),
    )  # fmt: skip
    assert code == 0, text
    assert f"plan: hh-harmless {round(hh / 10)} items, strongreject {round(sr / 10)} items" in text


def test_generate_plan_with_a_fraction_and_another_spelling(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hh = load_source("hh-harmless", hub="never").available
    code, text = run_main(
        monkeypatch, capsys, "generate", "--backend", "scripted", "--hub", "never",
        "-s", "hh_harmless", "-s", "advbench:direct:2", "--limit", "0.2", "--dry-run",
        "-o", str(tmp_path / "gen"),
    )  # fmt: skip
    assert code == 0, text
    assert f"plan: {round(hh / 5) + 2} samples from 2 source(s)" in text
    assert "hh-harmless:matrix" in text


@pytest.mark.parametrize("value", ["0", "1.5", "-1", "ten"])
def test_a_limit_that_is_neither_a_count_nor_a_fraction_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the message on one line of rich's error box
    code, text = run_main(
        monkeypatch, capsys, "evaluate", "--backend", "scripted", "--hub", "never",
        "-B", "advbench", "--limit", value, "--metrics", "refusal", "--dry-run",
    )  # fmt: skip
    assert code == 2
    assert "is neither a count (a whole number from 1) nor a fraction" in text
