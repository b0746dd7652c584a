"""Listening: the socket, and uvicorn serving the app on it until Ctrl-C (or SIGTERM).

The socket is bound here, before uvicorn starts, so that ``--port 0`` can print the port
the system chose and a port in use is one clear error. Requires uvicorn (the ``serve``
extra).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.serve.settings import ServeSettings

# Seconds in-flight requests get to finish once Ctrl-C is pressed, before they are cancelled.
GRACEFUL_SHUTDOWN_S = 5
# Connections the system queues until the server accepts them (also how many it accepts in
# one go: protocol.connection_cap keeps room for them).
BACKLOG = 64


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise MatrixAlignError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.", hint=_bind_hint(exc)
        ) from None
    return sock


def _bind_hint(exc: OSError) -> str:
    """What to change: the port only when the port is the problem (in use, or below 1024
    without the right), else the host (an unknown name, or an address not of this
    machine)."""
    if exc.errno == errno.EADDRINUSE:
        return "choose another --port (0 picks a free one), or stop what uses this one"
    if exc.errno == errno.EACCES:
        return "choose a --port from 1024 up (lower ones need administrator rights)"
    return (
        "give a --host that is an address of this machine: 127.0.0.1 (this machine only), "
        "0.0.0.0 (every interface), or one that `ip addr` lists"
    )


def bound_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def make_server(app: Any, settings: ServeSettings) -> Any:
    """The uvicorn server for ``app``: logging stays the package's (``-v`` shows uvicorn's),
    and connections get the read deadlines and the cap of ``settings`` (``protocol.py``)."""
    import uvicorn

    from matrix_align.serve.protocol import connection_cap, deadline_protocol, quiet_accept_errors

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(quiet_accept_errors(loop.get_exception_handler()))
            await super().startup(sockets)

    config = uvicorn.Config(
        app,
        http=deadline_protocol(
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=connection_cap(settings.max_connections, BACKLOG),
        ),
        backlog=BACKLOG,
        log_config=None,  # no handlers of uvicorn's own: -v / --log-level decide
        access_log=False,  # the command prints one line per answered request instead
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return Server(config)


async def serve(app: Any, sock: socket.socket, settings: ServeSettings) -> None:
    """Serve in the running event loop (the model's) until Ctrl-C or SIGTERM.

    uvicorn shuts down gracefully on the signal, then raises it again for the handler it
    replaced: under ``asyncio.run``, Ctrl-C then cancels the task that awaits this, so the
    model it serves is closed on the way out and ``asyncio.run`` ends in KeyboardInterrupt
    (``serve_until_stopped`` takes that as the stop it is)."""
    await make_server(app, settings).serve(sockets=[sock])
