"""The HTTP protocol: uvicorn's (h11) with read deadlines and a cap on open connections.

uvicorn reads a request for as long as the client takes: its keep-alive timer only runs
between requests, and any byte received resets it. A client that opens connections and
sends half a request line and then nothing (slowloris) holds each one for ever, and once
the process runs out of file descriptors nothing else (``/health`` included) gets in. An
ASGI middleware cannot help, as it runs only once a request's headers are complete; the
protocol class is uvicorn's extension point for this (``uvicorn.Config(http=...)``):

- Deadlines: a request's headers must arrive within ``header_timeout_s`` of the
  connection opening (or of the previous answer, on a kept-alive connection) and its body
  within ``body_timeout_s`` of its headers; a byte that arrives does not extend them. Past
  one, the connection is closed. Writing an answer, however long the scene takes, has none.
- The cap: at most ``max_connections`` are open, kept under the open-file limit (``ulimit
  -n``) with room for what the server itself opens. A new one beyond it closes the oldest
  connection still waiting for its request (the slow ones, or idle kept-alive ones), so a
  probe that sends its request at once still gets in; when every connection is busy with
  a request, the new one is answered 503 and closed. (asyncio accepts up to the listen
  backlog in one go, before any of their requests is read: with a cap of at least twice
  the backlog, as by default, a batch never closes its own new connections.)

The client key is checked by ``app.Guard`` as soon as a request's headers are complete,
before any of its body is read: the earliest the key (a header) can be known.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# File descriptors kept for the server itself beyond its client connections: the
# interpreter, the model (files, or connections to an upstream server) and trace writes.
RESERVED_FDS = 64
# What a connection refused at the cap is told before it is closed.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 41\r\n\r\n"
    b"Too many open connections; retry shortly."
)


def connection_cap(requested: int, backlog: int) -> int:
    """``requested``, lowered to fit the open-file limit, so connections can never exhaust
    the descriptors the server needs to accept, answer and write. ``backlog`` (the listen
    backlog) is kept free too: it is also how many connections asyncio accepts in one go,
    before one over the cap can be closed."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft - RESERVED_FDS - backlog))


def deadline_protocol(
    *, header_timeout_s: float, body_timeout_s: float, max_connections: int
) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with these limits (uvicorn instantiates it per
    connection)."""

    class DeadlineProtocol(_DeadlineProtocol):
        timeouts = {h11.IDLE: header_timeout_s, h11.SEND_BODY: body_timeout_s}
        cap = max_connections

    return DeadlineProtocol


class _DeadlineProtocol(H11Protocol):
    # The deadline of each state of the client's side of the connection: IDLE until its
    # request's headers are complete, SEND_BODY until its body is.
    timeouts: dict[Any, float] = {}
    cap = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: Any = None  # the client state the deadline below is for
        self._deadline: asyncio.TimerHandle | None = None
        self._opened = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = self.loop.time()
        if len(self.connections) > self.cap and not self._evict_a_waiting_connection():
            log.debug("refused a connection: %d open, all busy", len(self.connections) - 1)
            transport.write(_BUSY)
            transport.close()
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # a kept-alive connection waits for its next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_deadline(None)
        super().connection_lost(exc)

    @property
    def waiting(self) -> bool:
        """Open, and waiting for (the rest of) a request's headers."""
        return self._phase is h11.IDLE and not self.transport.is_closing()

    def _evict_a_waiting_connection(self) -> bool:
        waiting = [c for c in self.connections if isinstance(c, _DeadlineProtocol) and c.waiting]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._opened)
        oldest._expire("the connection cap was reached")
        return True

    def _follow(self) -> None:
        """Start the deadline of the client's state when it has changed."""
        state = self.conn.their_state
        if state is not self._phase and not self.transport.is_closing():
            self._set_deadline(state)

    def _set_deadline(self, state: Any) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = state
        timeout = self.timeouts.get(state)
        if timeout is not None:
            what = "headers" if state is h11.IDLE else "body"
            self._deadline = self.loop.call_later(timeout, self._expire, f"no {what} in time")

    def _expire(self, why: str) -> None:
        # Debug only: a flood of slow clients must not flood the log too.
        log.debug("closed a connection from %s: %s", self.client, why)
        self._set_deadline(None)
        self.transport.close()


def quiet_accept_errors(
    previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]:
    """An event-loop exception handler that reports running out of file descriptors (or
    memory) while accepting as one line a minute, instead of asyncio's traceback per retry
    (which, under a low ``ulimit -n``, grew the log by megabytes a second). Everything else
    goes to ``previous`` (or asyncio's default)."""
    last = -float("inf")

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            if loop.time() - last >= 60:
                last = loop.time()
                log.warning(
                    "cannot accept connections: %s (new ones wait; raise `ulimit -n` or lower "
                    "--max-connections)",
                    context.get("exception"),
                )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handle
