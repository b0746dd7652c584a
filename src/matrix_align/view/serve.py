"""Serve a written site on 127.0.0.1, for browsers or setups that restrict ``file://`` pages.

Only the loopback address is ever bound: the site shows model outputs and prompts that may
be private, and nothing here authenticates anyone. The server runs on a thread so the
caller's thread can wait for Ctrl-C and shut it down cleanly.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

HOST = "127.0.0.1"


class _Handler(SimpleHTTPRequestHandler):
    """Static files with the same strict policy as the pages' own meta tag, and no logging."""

    def end_headers(self) -> None:
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "base-uri 'none'; form-action 'none'",
        )
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _host_allowed(self) -> bool:
        """A page of any web site can make a browser ask 127.0.0.1 under its own name (DNS
        rebinding) and read the answer: only requests addressed to this server by its
        loopback name are answered."""
        host = (self.headers.get("Host") or "").strip().lower()
        return host in getattr(self.server, "allowed_hosts", ())

    def do_GET(self) -> None:
        if self._host_allowed():
            super().do_GET()
        else:
            self.send_error(403, "Unknown Host header")

    def do_HEAD(self) -> None:
        if self._host_allowed():
            super().do_HEAD()
        else:
            self.send_error(403, "Unknown Host header")

    def list_directory(self, path: Any) -> None:  # type: ignore[override]
        self.send_error(404, "No such page")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        return


class SiteServer:
    """A started server for ``root``; ``url`` is where it answers, ``stop()`` ends it."""

    def __init__(self, root: Path, port: int = 0) -> None:
        handler = functools.partial(_Handler, directory=str(root))
        try:
            self._httpd = ThreadingHTTPServer((HOST, port), handler)
        except OSError as exc:
            raise MatrixAlignError(
                f"cannot serve on {HOST}:{port}: {exc.strerror or exc}.",
                hint="Choose another --port (0 picks a free one).",
            ) from exc
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._httpd.allowed_hosts = {  # type: ignore[attr-defined]
            f"{name}:{self.port}" for name in (HOST, "localhost")
        }
        self.url = f"http://{HOST}:{self.port}/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="matrix-align-view", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SiteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
