"""How inspect finds matrix-align: the entry point, the names, the command line, and that
``import matrix_align`` does not import inspect."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai._util.registry import registry_lookup  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

from matrix_align.errors import MatrixAlignError  # noqa: E402
from matrix_align.inspect.scene_view import TRACE_KEY  # noqa: E402
from matrix_align.inspect.solver import matrix, query_of  # noqa: E402

_REPO = Path(__file__).resolve().parents[2]
ENTRY_POINT = "matrix_align.inspect._registry"
TASKS = ("advbench", "harmfulqa", "hh_harmless", "pku_saferlhf", "strongreject", "xstest")


def test_pyproject_declares_the_entry_point_under_the_package_name() -> None:
    project = tomllib.loads((_REPO / "pyproject.toml").read_text("utf-8"))["project"]
    # inspect loads an entry point only when its name is the namespace asked for.
    assert project["entry-points"]["inspect_ai"] == {"matrix_align": ENTRY_POINT}
    assert any(r.startswith("inspect-ai") for r in project["optional-dependencies"]["inspect"])


def test_the_entry_point_registers_every_name() -> None:
    __import__(ENTRY_POINT)
    for name in TASKS:
        assert registry_lookup("task", f"matrix_align/{name}") is not None, name
    assert registry_lookup("solver", "matrix_align/matrix") is not None
    for name in ("refusal", "harmlessness", "helpfulness", "strongreject_score"):
        assert registry_lookup("scorer", f"matrix_align/{name}") is not None, name


def _entry_point_path(tmp_path: Path) -> str:
    """A folder to put on PYTHONPATH that declares the entry point, when the installed
    package's metadata predates it (a checkout run with PYTHONPATH=src); else nothing."""
    found = importlib.metadata.entry_points(group="inspect_ai", name="matrix_align")
    if any(ep.value == ENTRY_POINT for ep in found):
        return ""
    dist = tmp_path / "ep" / "matrix_align_inspect_entry_point-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: matrix-align-inspect-entry-point\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(f"[inspect_ai]\nmatrix_align = {ENTRY_POINT}\n")
    return str(dist.parent)


def test_inspect_eval_command_line(tmp_path: Path) -> None:
    """The command of docs/inspect.md, on the scripted double so it needs no model."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    # The installed package when its metadata declares the entry point (inspect names a
    # task's package from the distribution that declared it: the same code put first on
    # PYTHONPATH is not found under that name); else this checkout with a declaration.
    declared = _entry_point_path(tmp_path)
    paths = [declared, str(_REPO / "src")] if declared else []
    paths.append(env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    logs = tmp_path / "logs"
    command = [
        sys.executable, "-m", "inspect_ai", "eval", "matrix_align/advbench",
        "--model", "matrix_align/scripted", "--solver", "matrix_align/matrix",
        "-S", "roles=1", "-S", "steps=1", "-T", "hub=never", "-T", "judged=false",
        "--limit", "1", "--log-dir", str(logs), "--display", "none",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = logs.glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success"
    assert log.eval.solver == "matrix_align/matrix"
    assert TRACE_KEY in log.samples[0].store


def test_import_matrix_align_does_not_import_inspect() -> None:
    code = (
        "import sys, matrix_align, matrix_align.evaluate, matrix_align.cli.app; "
        "print([m for m in sys.modules if m.startswith('inspect_ai')])"
    )
    env = dict(os.environ, PYTHONPATH=str(_REPO / "src"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_scene_settings_stop_when_the_solver_is_built() -> None:
    with pytest.raises(MatrixAlignError, match="n_roles"):
        matrix(roles=0)


def test_a_conversation_becomes_one_query_as_the_project_renders_it() -> None:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    from matrix_align.folders.records import ChatMessage, render_conversation

    turns = [("user", "Hi"), ("assistant", "Hello, how can I help?"), ("user", "Tell me more")]
    kinds = {"user": ChatMessageUser, "assistant": ChatMessageAssistant}
    messages = [ChatMessageSystem(content="Be brief.")] + [
        kinds[role](content=text) for role, text in turns
    ]
    expected = render_conversation([ChatMessage(role=r, content=t) for r, t in turns])
    assert query_of(messages) == expected
    assert query_of("just a question") == "just a question"
    assert query_of(messages[:-1]) is None  # the last turn is the assistant's


def test_a_judged_task_without_a_grader_fails_the_command(tmp_path: Path) -> None:
    """`inspect eval` exits 0 when a task logs an error; a judged task with no grader is
    refused while it is built instead, so the command fails, with the fix in one message."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    declared = _entry_point_path(tmp_path)
    paths = [declared, str(_REPO / "src")] if declared else []
    env["PYTHONPATH"] = os.pathsep.join(p for p in [*paths, env.get("PYTHONPATH", "")] if p)
    command = [
        sys.executable, "-m", "inspect_ai", "eval", "matrix_align/advbench",
        "--model", "matrix_align/scripted", "-T", "hub=never", "--limit", "1",
        "--log-dir", str(tmp_path / "logs"),  # (--display none would hide the message)
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "role 'grader'" in output and "--model-role grader=" in output
    assert "Traceback" not in output
