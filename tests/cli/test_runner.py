"""Every command runs its coroutine through ``cli.runner.run_async``, where SIGTERM acts as
Ctrl-C: the work is cancelled, what it opened is closed, and KeyboardInterrupt (exit 130)
comes out."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
from pathlib import Path

import pytest

import matrix_align.cli
from matrix_align.cli.runner import run_async

CLI = Path(matrix_align.cli.__file__).parent


def test_sigterm_cancels_the_work_and_ends_as_ctrl_c() -> None:
    closed: list[str] = []
    before = signal.getsignal(signal.SIGTERM)

    async def work() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(60)
        finally:
            closed.append("model")  # what an ``async with spec.open()`` does on the way out

    with pytest.raises(KeyboardInterrupt):
        run_async(work())
    assert closed == ["model"]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the run's only


def test_work_that_swallows_the_cancellation_still_ends_as_a_stop() -> None:
    async def stubborn() -> str:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "summary written"  # as generate ends: its summary, then the stop
        return "not stopped"

    with pytest.raises(KeyboardInterrupt):
        run_async(stubborn())


def test_a_result_comes_back() -> None:
    async def answer() -> int:
        return 42

    assert run_async(answer()) == 42


def test_no_command_runs_a_loop_of_its_own() -> None:
    """``asyncio.run`` appears in the runner only, so every command handles SIGTERM alike."""
    callers = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("run", "new_event_loop", "Runner")
                and isinstance(node.value, ast.Name)
                and node.value.id == "asyncio"
            ):
                callers.append(path.name)
    assert set(callers) == {"runner.py"}, callers
