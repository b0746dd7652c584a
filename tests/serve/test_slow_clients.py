"""Clients that send slowly, or never: read deadlines close them, the connection cap keeps
room for clients that do send, a request without the key is refused before its body, and
running out of file descriptors is one log line, not a traceback per retry (protocol.py)."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from matrix_align.serve.protocol import RESERVED_FDS, connection_cap, quiet_accept_errors
from matrix_align.serve.settings import ServeSettings
from tests.serve.conftest import WAIT_S, BlockingModel, LoopbackServer, echo_model, wait_for

HALF_A_REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@contextmanager
def connections(server: LoopbackServer, n: int) -> Iterator[list[socket.socket]]:
    url = urlsplit(server.base_url)
    opened = [socket.create_connection((url.hostname, url.port), timeout=WAIT_S) for _ in range(n)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """Waits (at most WAIT_S) for the server to close ``sock``: True when it did."""
    try:
        while data := sock.recv(4096):
            if b"HTTP/1.1 503" in data:  # refused at the cap, then closed
                continue
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_request_whose_headers_never_end_is_closed_at_the_deadline() -> None:
    settings = ServeSettings(header_timeout_s=0.5)
    with LoopbackServer(echo_model(), settings) as server, connections(server, 2) as (silent, half):
        half.sendall(HALF_A_REQUEST)
        assert closed_by_server(silent) and closed_by_server(half)
        assert server.get("/health").status_code == 200


def test_bytes_that_trickle_in_do_not_extend_the_deadline() -> None:
    settings = ServeSettings(header_timeout_s=1.0)
    with LoopbackServer(echo_model(), settings) as server, connections(server, 1) as (sock,):
        sock.settimeout(0.1)
        deadline = time.monotonic() + WAIT_S
        closed = False
        for byte in (HALF_A_REQUEST * 1000)[: 10 * WAIT_S]:  # one a tenth of a second
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""
            except TimeoutError:
                pass  # still open, nothing to read: send the next byte
            except OSError:
                closed = True
            if closed or time.monotonic() > deadline:
                break
        assert closed


def test_a_body_that_never_arrives_is_closed_at_the_deadline() -> None:
    settings = ServeSettings(body_timeout_s=0.5)
    with LoopbackServer(echo_model(), settings) as server, connections(server, 1) as (sock,):
        sock.sendall(
            HALF_A_REQUEST + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        assert closed_by_server(sock)
        assert server.get("/health").status_code == 200


def test_a_request_without_the_key_is_refused_before_its_body_and_closed() -> None:
    settings = ServeSettings(api_key="s3cret-key", body_timeout_s=WAIT_S * 10)
    with LoopbackServer(echo_model(), settings) as server, connections(server, 1) as (sock,):
        sock.sendall(
            HALF_A_REQUEST + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):  # the server closes it: no body deadline involved
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 401")


def test_connections_over_the_cap_close_the_oldest_waiting_one() -> None:
    """More silent connections than the cap: /health still gets in, and they are closed."""
    settings = ServeSettings(max_connections=4)
    with LoopbackServer(echo_model(), settings) as server, connections(server, 10) as silent:
        assert server.get("/health").status_code == 200
        assert sum(closed_by_server(sock) for sock in silent[:6]) == 6


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503() -> None:
    model = BlockingModel(echo_model())
    settings = ServeSettings(max_connections=2, max_concurrency=2)
    with LoopbackServer(model, settings) as server:

        def ask() -> int:
            return server.client().with_raw_response.models.list().status_code

        with ThreadPoolExecutor(2) as pool:
            busy = [
                pool.submit(
                    server.client().chat.completions.create,
                    model="matrix-align",
                    messages=[{"role": "user", "content": f"BLOCK {i}"}],
                )
                for i in range(2)
            ]
            wait_for(lambda: server.admission.running == 2, "both scenes to run")
            refused = server.get("/health")
            assert refused.status_code == 503 and b"Too many open connections" in refused.content
            model.release.set()
            assert all(f.result().choices[0].message.content for f in busy)
        assert ask() == 200


def test_the_cap_stays_under_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 256))
    assert connection_cap(1000, backlog=64) == 256 - RESERVED_FDS - 64
    assert connection_cap(10, backlog=64) == 10
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert connection_cap(1000, backlog=64) == 1000


def test_running_out_of_descriptors_is_one_line_not_a_traceback_per_try(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passed: list[dict] = []
    handle = quiet_accept_errors(lambda loop, context: passed.append(context))
    loop = asyncio.new_event_loop()
    try:
        error = OSError(24, "Too many open files")
        with caplog.at_level(logging.WARNING):
            for _ in range(1000):
                handle(loop, {"message": "socket.accept() out of system resource",
                              "exception": error})  # fmt: skip
        handle(loop, {"message": "something else"})
    finally:
        loop.close()
    (record,) = caplog.records
    assert "Too many open files" in record.getMessage() and record.exc_info is None
    assert passed == [{"message": "something else"}]  # other errors are reported as before
