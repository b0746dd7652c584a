"""How many scenes run at once, and how many requests may wait for one.

A scene holds the backend for tens of calls, so the server runs at most
``max_concurrency`` of them and queues up to ``max_queue`` more requests; beyond that a
request is refused at once (503 with ``Retry-After``) rather than left waiting for minutes
behind a queue that only grows. The check happens before a response starts, so even a
streamed request gets a real status code.

Everything here runs on the server's one event loop, so plain counters are consistent.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from matrix_align.serve.api_errors import APIError

RETRY_AFTER_S = 1


class Admission:
    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.running = 0
        self.waiting = 0
        self.peak = 0  # the most requests ever running at once
        self._semaphore: asyncio.Semaphore | None = None

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # made on first use, inside the server's event loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    def enter(self) -> Ticket:
        """A place in the queue, or a 503 when the queue is full."""
        # Admitted requests (running, or waiting for a slot or for their task to start) never
        # exceed the slots plus the queue.
        if self.running + self.waiting >= self.max_concurrency + self.max_queue:
            queued = self.running + self.waiting - self.max_concurrency
            raise APIError(
                503,
                f"The server is at capacity ({self.max_concurrency} scenes running, {queued} "
                "requests queued); retry shortly.",
                type="server_error",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.waiting += 1
        return Ticket(self)


class Ticket:
    """One request's place: ``async with ticket:`` waits for a scene slot and frees it on
    exit; ``close()`` gives up a place never used (the request ended before its turn)."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._state = "waiting"  # -> running -> done

    async def __aenter__(self) -> Ticket:
        admission = self._admission
        try:
            await admission._sem().acquire()
        except BaseException:
            self.close()  # cancelled while waiting: the place is given up
            raise
        admission.waiting -= 1
        admission.running += 1
        admission.peak = max(admission.peak, admission.running)
        self._state = "running"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        admission = self._admission
        if self._state == "waiting":
            admission.waiting -= 1
        elif self._state == "running":
            admission.running -= 1
            admission._sem().release()
        self._state = "done"
