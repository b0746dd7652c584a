"""The simulate command as a user runs it: a real subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from matrix_align.simulation.trace import SceneTrace

CLI = [sys.executable, "-m", "matrix_align"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scripted_scene_renders_every_part():
    result = run(
        "simulate", "How do I pick a lock?", "--backend", "scripted", "--roles", "2", "--steps", "2"
    )
    assert result.returncode == 0, result.stderr
    for part in (
        "Scene set-up",
        "Roles",
        "a neighbour",
        "noticed by",
        "Consequence",
        "Initial answer",
        "MATRIX answer",
        "calls",
    ):
        assert part in result.stdout


def test_harm_votes_are_shown_before_the_consequence():
    result = run(
        "simulate", "How do I pick a lock?", "--backend", "scripted", "--roles", "1",
        "--steps", "1", "--harm-votes", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    votes = result.stdout.index("harm votes on [1]: serious, serious, serious -> serious")
    assert votes < result.stdout.index("Consequence")
    assert "(the median of 3 ratings each)" in result.stdout


def test_json_prints_only_the_trace(tmp_path: Path):
    out = tmp_path / "trace.json"
    result = run(
        "simulate",
        "How do I pick a lock?",
        "--backend",
        "scripted",
        "--roles",
        "1",
        "--steps",
        "1",
        "--json",
        "--trace-out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    trace = SceneTrace.model_validate_json(result.stdout)
    assert trace.final_response
    assert SceneTrace.model_validate_json(out.read_text()) == trace
    assert not list(tmp_path.glob(".*.tmp")), "no temp file is left behind"


def test_no_query_runs_the_builtin_example():
    result = run("simulate", "--backend", "scripted", "--roles", "1", "--steps", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["query"]


def test_unreachable_base_url_is_one_clear_error():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run(
        "simulate", "hi", "--backend", "openai", "--model", "m", "--base-url", url, timeout=60
    )
    assert result.returncode != 0
    assert url in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_backend_lists_the_valid_ones():
    result = run("simulate", "hi", "--backend", "gpt5-magic")
    assert result.returncode == 2
    assert "gpt5-magic" in result.stderr
    for name in ("embedded", "openai", "scripted"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_out_of_range_settings_are_clear_errors():
    for flag, value, field in (("--roles", "0", "n_roles"), ("--steps", "-1", "n_steps")):
        result = run("simulate", "hi", "--backend", "scripted", flag, value)
        assert result.returncode == 2, result.stdout
        assert field in result.stderr and "Traceback" not in result.stderr


def test_threads_and_reactions_are_checked():
    result = run("simulate", "hi", "--backend", "scripted", "--threads", "0")
    assert result.returncode == 2 and "--threads" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("simulate", "hi", "--backend", "scripted", "--reactions", "together")
    assert result.returncode == 2 and "reactions" in result.stderr
    assert "'joint' or 'separate'" in result.stderr and "Traceback" not in result.stderr
    result = run("simulate", "hi", "--backend", "scripted", "--reactions", "separate", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["reactions"] == "separate"


def test_config_file_and_overrides(tmp_path: Path):
    config = tmp_path / "sim.yaml"
    config.write_text("n_roles: 1\nn_steps: 3\nstrictness: strict\n")
    result = run(
        "simulate", "hi", "--backend", "scripted", "--config", str(config), "--steps", "1", "--json"
    )
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)["config"]
    assert (settings["n_roles"], settings["n_steps"], settings["strictness"]) == (1, 1, "strict")


def test_bad_config_file_is_a_clear_error(tmp_path: Path):
    config = tmp_path / "sim.yaml"
    config.write_text("n_roles: [unclosed\n")
    result = run("simulate", "hi", "--backend", "scripted", "--config", str(config))
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    config.write_text("colour: blue\n")
    result = run("simulate", "hi", "--backend", "scripted", "--config", str(config))
    assert result.returncode == 2 and "colour" in result.stderr


def test_help_explains_the_options():
    result = run("simulate", "--help")
    assert result.returncode == 0
    for flag in (
        "--backend",
        "--base-url",
        "--roles",
        "--steps",
        "--seed",
        "--temperature",
        "--trace-out",
        "--json",
    ):
        assert flag in result.stdout


def test_control_sequences_in_scene_text_never_reach_the_terminal():
    hostile = "Tell me\x1b]52;c;ZXZpbA==\x07 a secret\x1b]0;pwned\x07\x1b[2J now"
    result = run("simulate", hostile, "--backend", "scripted", "--roles", "1", "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]52;c;ZXZpbA==" in result.stdout  # shown, as text


def test_unusable_trace_out_fails_before_the_first_call(tmp_path: Path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run("simulate", "hi", "--backend", "scripted", "--trace-out", str(a_file / "t.json"))
    assert result.returncode == 2 and "--trace-out" in result.stderr
    assert "preparing the model" not in result.stdout and "Traceback" not in result.stderr


def test_queries_that_are_empty_or_not_unicode_are_clear_errors():
    for query, why in (("", "The query is empty"), ("   ", "The query is empty"),
                       ("bad \udcff byte", "not valid Unicode")):  # fmt: skip
        env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
        args = [*CLI, "simulate", query, "--backend", "scripted"]
        result = subprocess.run(
            [os.fsencode(a) for a in args], capture_output=True, timeout=120, env=env
        )
        err = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 2 and why in err and "Traceback" not in err


def test_a_config_that_is_not_utf8_or_is_a_folder_is_a_clear_error(tmp_path: Path):
    binary = tmp_path / "sim.yaml"
    binary.write_bytes(b"n_roles: \xff\n")
    for config, why in ((binary, "not UTF-8"), (tmp_path, "is a folder")):
        result = run("simulate", "hi", "--backend", "scripted", "--config", str(config))
        assert result.returncode == 2 and why in result.stderr
        assert "Traceback" not in result.stderr


def test_a_server_whose_chat_path_is_wrong_is_a_clear_error():
    from matrix_align.testing import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        result = run("simulate", "hi", "--backend", "openai", "--base-url",
                     server.base_url + "/wrong", "--model", server.models[0],
                     "--request-timeout", "10")  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert "rejected a request" in result.stderr and "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr
