"""Hostile-client tries against `matrix-align serve` (no model: the scripted backend, on a
loopback port), so each round of reliability checks can rerun them (issue 25 N4, N5):

- slow clients: under `ulimit -n 256`, 300 connections that send half a request line and
  then nothing (slowloris), with and without a client key; meanwhile /health must answer,
  and the server's log must not grow (no traceback per failed accept);
- trace memory: the largest requests a client can send (every scene setting at its upper
  limit, the longest query), 10 at once, with a fake upstream as the backend; the RSS must
  stay under the budget docs/serve.md documents.

Usage: python bench/serve_abuse.py [slow|memory|all]   (from the repository root; prints a
line per check and exits 1 when one fails)
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KEY_ENV = "SERVE_ABUSE_KEY"


class Server:
    def __init__(self, *args: str, nofile: int | None = None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="serve-abuse-", suffix=".log")[1])

        def limit() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = {**os.environ, "HF_HUB_OFFLINE": "1", KEY_ENV: "k" * 32, "COLUMNS": "200"}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "matrix_align", "serve", "--port", "0",
                 *(args if "-b" in args else ("-b", "scripted", *args))],
                stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=limit,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "serving MATRIX at " in text:
                url = text.split("serving MATRIX at ", 1)[1].split()[0]
                self.base = url.removesuffix("/v1")
                host, port = self.base.removeprefix("http://").rsplit(":", 1)
                self.address = (host, int(port))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit("the server did not start:\n" + self.log.read_text())

    def health(self, timeout: float = 5.0) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/health", timeout=timeout) as response:
                return response.status == 200
        except OSError:
            return False

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def check(ok: bool, what: str) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    return ok


def slow_clients(*extra: str) -> bool:
    server = Server(*extra, nofile=256)
    idle_files = server.open_files()
    sockets = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(server.address)
            sockets.append(sock)
        time.sleep(1)
        for sock in sockets:
            with contextlib.suppress(OSError):  # one the server already closed
                sock.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        size_before = server.log.stat().st_size
        answered = sum(server.health() for _ in range(10))
        time.sleep(20)
        answered_late = sum(server.health() for _ in range(10))
        growth = server.log.stat().st_size - size_before
        # The last of them connect late (the system retries a connection its queue had no
        # room for after 1, 3, 7, 15 s): give those their header deadline too.
        time.sleep(30)
        # What the server holds (a client socket may still believe it is connected when
        # the system dropped it from a full accept queue: nobody holds those).
        held = server.open_files() - idle_files
        label = " ".join(extra) or "no key"
        results = [
            check(answered == 10, f"{label}: /health answered {answered}/10 with 300 slow clients"),
            check(answered_late == 10, f"{label}: /health answered {answered_late}/10 20 s later"),
            check(growth < 20_000, f"{label}: the log grew {growth:,} bytes in 20 s"),
            check(held <= 0, f"{label}: the server holds {held} more files than when idle"),
        ]
        return all(results)
    finally:
        for sock in sockets:
            sock.close()
        server.stop()


def largest_request(query_chars: int, settings: dict) -> bytes:
    return json.dumps(
        {
            "model": "matrix-align",
            "messages": [{"role": "user", "content": "Is this harmful? " + "x" * query_chars}],
            "matrix": settings,
        }
    ).encode()


def trace_memory() -> bool:
    """The largest requests a client can send: every scene setting at its upper limit and
    the longest query, 10 at once. Each runs until the scene budget stops it (400
    scene_too_large), keeping a trace near that budget; the RSS must stay within the budget
    docs/serve.md documents for the server's default settings."""
    # The backend is the fake OpenAI-compatible server, in its own process: the scripted
    # double keeps every request it was sent (for tests), which would count as the server's.
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "matrix_align.testing.fake_openai_server", "--port", str(port),
         "--model", "fake", "--base-latency", "0", "--per-token", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(3)
    server = Server("-b", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "fake")
    try:
        small = largest_request(99_000, {"roles": 2, "steps": 2})
        _post(server, small)  # warm up: what the first scene imports is not a trace
        baseline = server.rss_mb()
        largest = largest_request(99_000, {"roles": 16, "steps": 32, "depth": 3,
                                           "reactions": "separate"})  # fmt: skip
        peak = baseline
        with ThreadPoolExecutor(10) as pool:
            running = [pool.submit(_post, server, largest) for _ in range(10)]
            while not all(f.done() for f in running):
                peak = max(peak, server.rss_mb())
                time.sleep(0.2)
        statuses = [f.result() for f in running]
        answered = _post(server, small)
        rss = server.rss_mb()
        # docs/serve.md: base + 3 x --max-trace-mb + 8 x --max-scene-mb x --max-concurrency
        budget = 3 * 128 + 8 * 8 * 4
        print(f"     10 largest requests at once: {statuses}; RSS {baseline:.0f} MB, peak "
              f"{peak:.0f} MB, after {rss:.0f} MB")  # fmt: skip
        results = [
            check(all(s == 400 for s in statuses), "each stopped at the scene budget (400)"),
            check(answered == 200, f"a smaller scene with the same query is answered ({answered})"),
            check(
                peak - baseline < budget,
                f"RSS grew at most {peak - baseline:.0f} MB (documented budget: {budget} MB)",
            ),
        ]
        return all(results)
    finally:
        server.stop()
        upstream.terminate()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(server: Server, body: bytes) -> int:
    request = urllib.request.Request(
        server.base + "/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    ok = True
    if which in ("slow", "all"):
        ok &= slow_clients()
        ok &= slow_clients("--auth-key-env", KEY_ENV)
    if which in ("memory", "all"):
        ok &= trace_memory()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
