"""The batch layer under ``generate`` and ``evaluate``: many work items run into one folder,
resumably.

- ``BatchRunner`` runs any ``work(item)`` that returns an ``Outcome`` with bounded
  concurrency, appends each record the moment it finishes (``folders.store``), skips the ids
  already stored, writes failures to ``errors.jsonl`` with a reason (``failure_reason``) and
  retries them on the next run, and stops taking work after ``abort_after`` failures in a row;
- ``Outcome`` is what a work item returns: its record and its ``Usage`` (simulation/trace.py,
  the one shape of model use); ``RunStats`` is what one run did, ``ProgressState`` the
  snapshot progress displays are fed.

It knows nothing about MATRIX, datasets or benchmarks: ``generate`` (data/generate.py) and
``evaluate`` (evaluate/runner.py) bring the items, the work and the folder's file names.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from matrix_align.errors import (
    BackendUnavailable,
    MatrixAlignError,
    PermanentBackendError,
    TransientBackendError,
)
from matrix_align.folders import ERRORS, SAMPLES
from matrix_align.folders.records import ErrorRecord
from matrix_align.folders.store import IndexFn, JsonlStore
from matrix_align.redact import redact
from matrix_align.simulation.trace import Usage


def now_iso() -> str:
    """The time records and summaries are stamped with: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- results ------------------------------------------------------------------------------


class EmptyAnswerError(Exception):
    """The model produced an empty answer: nothing worth training on."""


@dataclass
class Outcome:
    """What a worker returns: the record to store (it must carry the item's ``id``) and
    the model use it cost (for the summary and the progress display)."""

    record: BaseModel | dict[str, Any]
    usage: Usage


def failure_reason(exc: BaseException) -> str:
    """A short category for summary.failures_by_reason; the message goes in ``detail``."""
    if isinstance(exc, EmptyAnswerError):
        return "empty_answer"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, TransientBackendError):
        text = str(exc).lower()
        return "timeout" if "timeout" in text or "timed out" in text else "backend_transient"
    if isinstance(exc, PermanentBackendError):
        return "backend_rejected"
    if isinstance(exc, BackendUnavailable):
        return "backend_unavailable"
    if isinstance(exc, MatrixAlignError):
        return "invalid_input"
    if isinstance(exc, ValidationError):
        return "invalid_output"
    return f"internal_error:{type(exc).__name__}"


# --- the runner ---------------------------------------------------------------------------


class BatchItem(Protocol):
    id: str

    def error_fields(self) -> dict[str, Any]: ...


@dataclass
class ProgressState:
    """A snapshot for progress displays. ``done`` counts samples already stored before this
    run too, so a resumed run's bar starts where the last one stopped."""

    total: int
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    completed_this_run: int = 0
    usage: Usage = field(default_factory=Usage)  # of the samples completed this run
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None  # set when the run stops, so rates stop moving

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def samples_per_minute(self) -> float:
        elapsed = self.elapsed_s
        return 60.0 * self.completed_this_run / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.samples_per_minute / 60.0
        remaining = self.total - self.done - self.failed
        return remaining / rate if rate > 0 else None


@dataclass
class RunStats:
    """What one run did (the counts of the whole dataset are in the summary)."""

    planned: int = 0
    skipped_done: int = 0  # already in samples.jsonl
    retried: int = 0  # had an error record from an earlier run
    attempted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0  # started, then stopped by an interrupt (redone by the next run)
    wall_time_s: float = 0.0
    interrupted: bool = False
    aborted: str | None = None
    usage: Usage = field(default_factory=Usage)
    failures_by_reason: dict[str, int] = field(default_factory=dict)


def _error_index(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": record.get("source"),
        "mode": record.get("mode"),
        "reason": record.get("reason"),
    }


class BatchRunner:
    """Runs ``work(item)`` over items with bounded concurrency into an output folder.

    Results go to ``samples_file`` and failures to ``errors_file`` (both append-only
    ``JsonlStore`` files); items whose id is already stored are skipped, items with an error
    record are retried (their old error is dropped first, so ``errors.jsonl`` always lists
    the outstanding failures only). ``index`` is what ``samples`` keeps in memory per stored
    record (``JsonlStore``), for a summary of the whole folder.
    """

    def __init__(
        self,
        output: Path | str,
        *,
        concurrency: int = 8,
        samples_file: str = SAMPLES,
        errors_file: str = ERRORS,
        index: IndexFn | None = None,
        abort_after: int = 25,
        on_progress: Callable[[ProgressState], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise MatrixAlignError("--concurrency must be at least 1.")
        self.output = Path(output)
        self.concurrency = concurrency
        self.abort_after = abort_after
        self.on_progress = on_progress
        self.samples = JsonlStore(self.output / samples_file, index=index)
        self.errors = JsonlStore(self.output / errors_file, index=_error_index)
        self.open_notes: list[str] = []
        self.stats = RunStats()  # the latest run's, complete even when it was interrupted

    def open(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        report = self.samples.open()
        if report.torn_bytes:
            self.open_notes.append(
                f"{self.samples.path.name}: removed an unfinished last line "
                f"({report.torn_bytes} bytes) left by an interrupted run; that sample is redone."
            )
        if report.corrupt_lines:
            self.open_notes.append(
                f"{self.samples.path.name}: skipped {len(report.corrupt_lines)} unreadable "
                f"line(s) (first: line {report.corrupt_lines[0]}); they are left in the file."
            )
        self.errors.open()
        # A sample that succeeded after its error was written keeps only the success.
        stale = self.errors.ids & self.samples.ids
        if stale:
            self.errors.rewrite(lambda r: r.get("id") not in stale)

    def close(self) -> None:
        self.samples.close()
        self.errors.close()

    async def run(
        self, items: Sequence[BatchItem], work: Callable[[Any], Awaitable[Outcome]]
    ) -> RunStats:
        stats = self.stats = RunStats(planned=len(items))
        todo = [item for item in items if item.id not in self.samples]
        stats.skipped_done = len(items) - len(todo)
        retry = {item.id for item in todo} & self.errors.ids
        if retry:
            self.errors.rewrite(lambda r: r.get("id") not in retry)
        stats.retried = len(retry)
        state = ProgressState(total=len(items), done=stats.skipped_done)
        reasons: Counter[str] = Counter()
        consecutive = 0
        queue = iter(todo)
        started = time.perf_counter()

        def notify() -> None:
            if self.on_progress is not None:
                self.on_progress(state)

        async def worker() -> None:
            nonlocal consecutive
            while stats.aborted is None:
                item = next(queue, None)
                if item is None:
                    return
                stats.attempted += 1
                state.in_flight += 1
                notify()
                try:
                    outcome = await work(item)
                    record = outcome.record
                    record_id = record.id if isinstance(record, BaseModel) else record.get("id")
                    if record_id != item.id:
                        raise RuntimeError(f"worker returned id {record_id!r} for {item.id!r}")
                except asyncio.CancelledError:
                    stats.cancelled += 1
                    raise
                except Exception as exc:
                    reason = failure_reason(exc)
                    reasons[reason] += 1
                    self.errors.append(
                        ErrorRecord(
                            **item.error_fields(),
                            reason=reason,
                            detail=redact(f"{type(exc).__name__}: {exc}")[:2000],
                            at=now_iso(),
                        )
                    )
                    stats.failed += 1
                    state.failed += 1
                    consecutive += 1
                    if (
                        self.abort_after
                        and consecutive >= self.abort_after
                        and stats.aborted is None
                    ):
                        stats.aborted = (
                            f"{consecutive} samples failed in a row (last: {reason}: "
                            f"{redact(str(exc))[:200]})"
                        )
                else:
                    self.samples.append(record)
                    consecutive = 0
                    stats.completed += 1
                    state.done += 1
                    state.completed_this_run += 1
                    stats.usage += outcome.usage  # its wall_s is the run's, set at the end
                    state.usage += outcome.usage
                finally:
                    state.in_flight -= 1
                    notify()

        notify()
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(todo))):
                    group.create_task(worker())
        except asyncio.CancelledError:
            stats.interrupted = True
            raise
        finally:
            state.ended = time.perf_counter()
            notify()
            stats.wall_time_s = round(state.ended - started, 3)
            stats.usage.wall_s = stats.wall_time_s
            stats.failures_by_reason = dict(reasons)
        return stats
