"""How every command runs its coroutine: ``run_async(coroutine)``, one event loop, with SIGTERM
acting as Ctrl-C and a backend that keeps failing as one clear error.

Why SIGTERM as Ctrl-C: ``timeout``, a job scheduler and ``kill`` send SIGTERM, whose default
ends the process at once, so a run would not write its summary, close its model or remove
the embedded model's socket folder. Here it cancels the main task, as asyncio does on
Ctrl-C: every task ends by cancellation, each ``async with`` closes what it opened, and
``KeyboardInterrupt`` is raised here, which the app turns into exit 130 (``serve`` takes it
as its normal stop). The handler only cancels: raised from a signal handler wherever the
signal lands, ``KeyboardInterrupt`` would instead end whichever task was running, which
asyncio reports as "Task exception was never retrieved", with a traceback.

The handler is a plain ``signal.signal`` one, as asyncio's for Ctrl-C, so a library that
takes the signals while it runs (uvicorn, under ``serve``) drains first and then passes the
signal on to it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from matrix_align.errors import (
    BackendUnavailable,
    MatrixAlignError,
    PermanentBackendError,
    RunFailed,
    TransientBackendError,
)

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end in a new event loop (see the module's docstring)."""
    try:
        return _run_stopping_on_sigterm(coroutine)
    except BackendUnavailable:
        raise
    except TransientBackendError as exc:  # the run had started: a failure, not bad input
        raise RunFailed(
            f"The model backend kept failing after retries: {exc}",
            hint="check that the server is up and not overloaded; rerun to resume",
        ) from None
    except PermanentBackendError as exc:
        raise MatrixAlignError(
            f"The model backend rejected a request: {exc}",
            hint="check --base-url (it usually ends in /v1) and --model",
        ) from None


def _run_stopping_on_sigterm(coroutine: Coroutine[Any, Any, T]) -> T:
    stopped = False

    async def main() -> T:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        assert task is not None

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopped
            stopped = True
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake the loop out of its wait

        if threading.current_thread() is not threading.main_thread():  # no signals there
            return await coroutine
        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return await coroutine
        finally:
            signal.signal(signal.SIGTERM, previous)

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        if stopped:
            raise KeyboardInterrupt from None
        raise
    if stopped:  # the run caught the cancellation and ended on its own: still a stop
        raise KeyboardInterrupt
    return result
