"""The generate and export commands: a real process killed mid-run (SIGKILL) resumes to
exactly one record per query; bad input fails before any model call with one clear error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.errors import MatrixAlignError

CLI = [sys.executable, "-m", "matrix_align"]
TINY = ["--roles", "1", "--steps", "1"]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_sigkill_mid_run_then_resume_gives_one_record_per_query(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        *CLI,
        "generate",
        "--backend",
        "scripted",
        "--source",
        "advbench:matrix:20",
        "--output",
        str(out),
        "--concurrency",
        "2",
        "--quiet",
        "--no-export",
        *TINY,
    ]
    # A simulated 30 ms per call makes the run last seconds, so the kill lands mid-run.
    proc = subprocess.Popen(
        [*command, "--call-delay", "0.03"],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 60
    while len(lines(samples)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    before = len(lines(samples))
    assert 3 <= before < 20, "the kill must land in the middle of the run"
    with samples.open("ab") as handle:  # and the worst case: a write torn by the kill
        handle.write(b'{"id":"torn","source":"advbench","mode":"matrix","prompt":[{"ro')

    done = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "unfinished last line" in done.stderr
    records = [json.loads(line) for line in lines(samples)]  # every line parses
    assert all(line.endswith(b"\n") for line in lines(samples))
    assert len(records) == 20
    assert len({r["id"] for r in records}) == 20
    queries = [r["prompt"][0]["content"] for r in records]
    assert len(set(queries)) == 20
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["counts"]["done"] == 20 and summary["counts"]["pending"] == 0
    assert summary["this_run"]["skipped_done"] == before

    again = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert len(lines(samples)) == 20


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def invoke(args: list[str]) -> BaseException | None:
    result = CliRunner().invoke(app, args)
    return result.exception


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{missing}"], "Input file not found"),
        (["--input", "{empty}"], "has no rows"),
        (["--input", "{questions}"], "no column 'prompt'; columns found: question"),
        (["--input", "{broken}"], "line 2: not valid JSON"),
        (["--source", "nosuch:matrix:5"], "Unknown source 'nosuch'"),
        (["--source", "advbench:sideways"], "unknown mode"),
        ([], "Nothing to generate"),
        (["--source", "advbench:2", "--steps", "0"], "Invalid simulation settings"),
    ],
)
def test_bad_input_fails_before_any_model_call(tmp_path: Path, args: list[str], message: str):
    files = {
        "missing": tmp_path / "missing.jsonl",
        "empty": tmp_path / "empty.jsonl",
        "questions": tmp_path / "q.jsonl",
        "broken": tmp_path / "broken.jsonl",
    }
    files["empty"].write_text("", "utf-8")
    files["questions"].write_text('{"question": "Why?"}\n', "utf-8")
    files["broken"].write_text('{"prompt": "ok"}\n{"prompt": \n', "utf-8")
    args = [a.format(**files) for a in args]
    # The backend points at a closed port: had any model call (or connection) come first,
    # the error would be about the server, not the input.
    backend = [
        "--backend",
        "openai",
        "--model",
        "m",
        "--base-url",
        f"http://127.0.0.1:{closed_port()}/v1",
    ]
    error = invoke(["generate", "--output", str(tmp_path / "out"), *backend, *args])
    assert isinstance(error, MatrixAlignError), error
    assert message in str(error)
    assert not (tmp_path / "out" / "samples.jsonl").exists()


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    backend = [
        "--backend",
        "openai",
        "--model",
        "m",
        "--base-url",
        f"http://127.0.0.1:{closed_port()}/v1",
    ]
    error = invoke(["generate", "--output", str(tmp_path), "--source", "advbench:1", *backend])
    assert isinstance(error, MatrixAlignError)


def test_cli_errors_exit_2_with_the_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *CLI,
            "generate",
            "--backend",
            "scripted",
            "--output",
            str(tmp_path),
            "--input",
            str(tmp_path / "nope.csv"),
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Input file not found" in result.stderr and "Traceback" not in result.stderr


def test_generate_then_export_command(tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "generate",
            "--backend",
            "scripted",
            "--source",
            "vicuna-bench:direct:2",
            "--output",
            str(out),
            "--quiet",
            *TINY,
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "exports/hf/prompt_completion/dataset_info.json").exists()
    result = runner.invoke(
        app,
        [
            "export",
            str(out),
            "--to",
            str(tmp_path / "x"),
            "-f",
            "prompt-completion,messages",
            "-t",
            "jsonl",
            "--no-traces",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "x/jsonl").iterdir()) == [
        "messages.jsonl",
        "prompt_completion.jsonl",
    ]
    row = json.loads((tmp_path / "x/jsonl/messages.jsonl").read_text("utf-8").splitlines()[0])
    assert list(row) == ["messages", "id", "source", "mode", "trace", "meta"] and row["trace"] == ""
    error = invoke(["export", str(out), "-f", "dpo"])
    assert isinstance(error, MatrixAlignError) and "Unknown format 'dpo'" in str(error)


def test_list_sources() -> None:
    result = CliRunner().invoke(app, ["generate", "--list-sources"])
    assert result.exit_code == 0
    assert "pku-saferlhf" in result.output and "CC BY-NC 4.0" in result.output


def test_exit_codes_tell_success_partial_and_total_failure(tmp_path: Path) -> None:
    import typer

    from matrix_align.cli.generate import _exit_for
    from matrix_align.errors import EXIT_PARTIAL, RunFailed

    def summary(done: int, failed: int) -> dict:
        return {"counts": {"done": done, "failed": failed},
                "failures_by_reason": {"timeout": failed} if failed else {}}  # fmt: skip

    _exit_for(summary(3, 0), tmp_path)  # returns: exit 0
    with pytest.raises(typer.Exit) as partial:
        _exit_for(summary(2, 1), tmp_path)
    assert partial.value.exit_code == EXIT_PARTIAL
    with pytest.raises(RunFailed, match="Every sample failed \\(timeout 3\\)"):
        _exit_for(summary(0, 3), tmp_path)


def test_unusable_output_destinations_are_one_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    runner = CliRunner()
    base = ["generate", "--backend", "scripted", "--source", "vicuna-bench:direct:1", "--quiet"]
    for output, why in ((a_file, "is a file"), (a_file / "sub", "part of that path is a file")):
        result = runner.invoke(app, [*base, "--output", str(output), "--hub", "never"])
        assert isinstance(result.exception, MatrixAlignError), result.output
        assert why in str(result.exception)
    result = runner.invoke(app, [*base, "--output", "", "--hub", "never"])
    assert result.exit_code == 2 and "is empty" in result.output
    export = runner.invoke(app, ["export", str(tmp_path), "--to", str(a_file)])
    assert isinstance(export.exception, MatrixAlignError)


def test_evaluate_never_overwrites_a_generate_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--backend", "scripted", "--source",
                                 "vicuna-bench:direct:1", "--output", str(out), "--quiet",
                                 "--hub", "never", "--no-export", *TINY])  # fmt: skip
    assert result.exit_code == 0, result.output
    before = (out / "run.json").read_bytes(), (out / "summary.json").read_bytes()
    result = runner.invoke(app, ["evaluate", "--backend", "scripted", "--metrics", "refusal",
                                 "-B", "advbench", "--limit", "1", "--hub", "never",
                                 "--output", str(out)])  # fmt: skip
    assert isinstance(result.exception, MatrixAlignError)
    assert "`matrix-align generate` output folder" in str(result.exception)
    assert ((out / "run.json").read_bytes(), (out / "summary.json").read_bytes()) == before


def test_sigterm_mid_run_exits_130_cleanly(tmp_path: Path) -> None:
    """SIGTERM (`timeout`, a job scheduler) stops the run as Ctrl-C does: exit 130, whole
    records, and nothing on stderr about tasks or coroutines left behind. Big scenes keep
    the event loop busy, so the signal lands while a task runs (where it used to leave
    "Task exception was never retrieved" and a traceback)."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, "generate", "--backend", "scripted", "--source", "advbench:matrix:200",
         "--output", str(out), "--quiet", "--no-export", "--roles", "16", "--steps", "32"],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while not lines(samples) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    for noise in ("Traceback", "never retrieved", "never awaited"):
        assert noise not in stderr, stderr
    assert all(line.endswith(b"\n") for line in lines(samples))
    assert 1 <= len(lines(samples)) < 200
