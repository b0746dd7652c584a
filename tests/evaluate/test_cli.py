"""The ``evaluate`` command: clear errors for bad input, a scripted run, and rejudge."""

from __future__ import annotations

import pytest

from matrix_align.cli.judge_aliases import judge_specs
from matrix_align.errors import MatrixAlignError
from tests.conftest import run_main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str]:
    return run_main(monkeypatch, capsys, "evaluate", *args)


BASE = ("--backend", "scripted", "--hub", "never", "--limit", "2", "-q")


def test_unknown_system_and_benchmark_list_the_valid_names(monkeypatch, capsys, tmp_path) -> None:
    code, text = run_cli(monkeypatch, capsys, *BASE, "-S", "vanilla,rlaif", "-o", str(tmp_path))
    assert code == 2 and "Unknown system: rlaif" in text and "self-refine" in text
    code, text = run_cli(monkeypatch, capsys, *BASE, "-B", "advbench,gsm8k", "-o", str(tmp_path))
    assert code == 2 and "Unknown benchmark: gsm8k" in text and "xstest" in text
    code, text = run_cli(monkeypatch, capsys, *BASE, "--metrics", "bleu", "-o", str(tmp_path))
    assert code == 2 and "Unknown metric: bleu" in text


def test_missing_judge_is_a_clear_error(monkeypatch, capsys, tmp_path) -> None:
    code, text = run_cli(monkeypatch, capsys, *BASE, "-B", "advbench", "-o", str(tmp_path / "x"))
    assert code == 2 and "need a model judge" in text and "--metrics refusal" in text
    assert not (tmp_path / "x").exists()  # no empty folder left behind either


@pytest.mark.parametrize(
    "bad",
    [("-B", "gsm8k"), ("-B", "advbench"),  # no judge for the default metrics
     ("-B", "advbench", "--metrics", "refusal", "--reference", "nobody")],  # refused under the lock
)  # fmt: skip
def test_refused_input_leaves_no_output_folder(monkeypatch, capsys, tmp_path, bad) -> None:
    for command in ("evaluate", "sweep"):
        out = tmp_path / "runs" / command
        grid = ("--grid", "roles=1,2") if command == "sweep" else ()
        code, text = run_main(monkeypatch, capsys, command, *BASE, *grid, *bad, "-o", str(out))
        assert code == 2 and "Traceback" not in text, text
        assert not (tmp_path / "runs").exists(), command


def test_a_scripted_run_then_rejudge(monkeypatch, capsys, tmp_path) -> None:
    out = str(tmp_path / "eval")
    code, text = run_cli(
        monkeypatch, capsys, *BASE, "-S", "vanilla,context-distillation", "-B", "advbench",
        "--metrics", "refusal", "--roles", "1", "--steps", "1", "-o", out,
    )  # fmt: skip
    assert code == 0, text
    assert "answers: 4 new" in text and (tmp_path / "eval" / "report.md").exists()
    code, text = run_cli(
        monkeypatch, capsys, "--rejudge", out, "--judge", "scripted", "--metrics",
        "refusal,harmlessness", "-q",
    )  # fmt: skip
    assert code == 0, text
    assert "judgements: 4 new, 4 already done" in text
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| scripted:default | harmlessness | 4 | 4 |" in report  # the demo script is no judge


def test_rejudge_of_a_folder_without_results(monkeypatch, capsys, tmp_path) -> None:
    code, text = run_cli(monkeypatch, capsys, "--rejudge", str(tmp_path), "--metrics", "refusal")
    assert code == 2 and "not an evaluation folder" in text


def test_list(monkeypatch, capsys) -> None:
    code, text = run_cli(monkeypatch, capsys, "--list")
    assert code == 0 and "critique-revise" in text and "strongreject" in text


def test_judge_specs_pair_options_by_position() -> None:
    assert judge_specs(None, None, None) == []
    assert judge_specs(["openai"], ["a", "b"], ["http://x/v1"]) == [
        ("openai", "a", "http://x/v1"),
        ("openai", "b", "http://x/v1"),
    ]
    assert judge_specs(["openai", "embedded"], ["a", "m.gguf"], ["http://x/v1", "-"])[1] == (
        "embedded",
        "m.gguf",
        "-",
    )
    assert judge_specs(["embedded"], None, None) == [("embedded", None, None)]
    with pytest.raises(MatrixAlignError, match="needs --judge-backend"):
        judge_specs(None, ["gpt-4o"], None)
    with pytest.raises(MatrixAlignError, match="--judge-model values"):
        judge_specs(["a", "b"], ["x", "y", "z"], None)
    with pytest.raises(MatrixAlignError, match="--judge-base-url"):
        judge_specs(["openai"], ["a", "b", "c"], ["u1", "u2"])


def test_notes_print_their_brackets(capsys, tmp_path) -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from matrix_align.cli.evaluate_output import print_result

    stats = SimpleNamespace(completed=1, skipped_done=0, failed=0)
    result = SimpleNamespace(
        answer_stats=stats, judge_stats=stats, output=tmp_path, report=tmp_path / "report.md",
        notes=["Plots need matplotlib: pip install 'matrix-align[eval]'"], silent_judges={},
    )  # fmt: skip
    print_result(Console(stderr=True, width=200), result)
    assert "pip install 'matrix-align[eval]'" in capsys.readouterr().err


def test_judge_prompt_options_are_checked_and_recorded(monkeypatch, capsys, tmp_path) -> None:
    out = tmp_path / "eval"
    for option, bad, valid in (
        ("--refusal-detector", "harmbench", "ours, gcg"),
        ("--strongreject-prompt", "v2", "ours, official"),
        ("--pairwise-prompt", "pair-v1", "ours, pair-v2"),
    ):
        code, text = run_cli(monkeypatch, capsys, *BASE, option, bad, "-o", str(out))
        assert code == 2 and f"Unknown {option} '{bad}'" in text and valid in text
        assert "Traceback" not in text
    code, text = run_cli(
        monkeypatch, capsys, *BASE, "-S", "vanilla", "-B", "advbench", "--metrics", "refusal",
        "--refusal-detector", "gcg", "-o", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert "## Refusal rate (%), GCG refusal prefixes" in (out / "report.md").read_text()
