"""What the server tells whoever runs it about its traffic: an ``x-request-id`` on every
answer, and counters for ``GET /metrics``.

The request id: the client's own ``x-request-id`` echoed back (so a client, a proxy and this
server's log can name one request alike), else a new one. Every response carries it, errors
and refusals at the door included. It is not the trace id (``x-matrix-trace-id``): a request
refused before admission has no trace.

The metrics, in Prometheus's text format (what vLLM, SGLang and llama.cpp's server expose at
``/metrics``, so one scrape configuration serves them all), kept few on purpose: chat
requests received and those answered with an error (by status), requests running and
queued now, and the tokens of every model call made for them. Counters start at zero with
the process.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from matrix_align.serve.api_errors import internal_error
from matrix_align.serve.record import ServeRecord

REQUEST_ID_HEADER = "x-request-id"
CHAT_PATH = "/v1/chat/completions"
# A client's id is echoed only when it is short printable text: it goes into a header and
# the log, where anything else could forge lines or swell them.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")


class Metrics:
    """The counters, updated by the middleware below and the answerer's ``on_finished``."""

    def __init__(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        self.requests = 0
        self.errors: Counter[int] = Counter()  # by HTTP status
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._running, self._queued = running, queued

    def failed(self, status: int) -> None:
        self.errors[status] += 1

    def finished(self, record: ServeRecord) -> None:
        """The tokens of every call made for a request (also one that failed or was
        cancelled: those calls were made, and an upstream bills them)."""
        usage = record.usage()
        self.prompt_tokens += usage["prompt_tokens"]
        self.completion_tokens += usage["completion_tokens"]

    def render(self) -> str:
        lines = [
            *_metric("requests_total", "counter", "Chat completion requests received.",
                     [("", self.requests)]),
            *_metric("request_errors_total", "counter",
                     "Chat completion requests answered with an error, by HTTP status.",
                     [(f'{{status="{s}"}}', n) for s, n in sorted(self.errors.items())]),
            *_metric("requests_running", "gauge", "Requests being answered now.",
                     [("", self._running())]),
            *_metric("requests_queued", "gauge", "Requests waiting for a free slot.",
                     [("", self._queued())]),
            *_metric("prompt_tokens_total", "counter",
                     "Prompt tokens of every model call made for the requests.",
                     [("", self.prompt_tokens)]),
            *_metric("completion_tokens_total", "counter",
                     "Completion tokens of every model call made for the requests.",
                     [("", self.completion_tokens)]),
        ]  # fmt: skip
        return "\n".join(lines) + "\n"


def _metric(name: str, kind: str, help: str, samples: list[tuple[str, int]]) -> list[str]:  # noqa: A002
    full = f"matrix_align_{name}"
    return [f"# HELP {full} {help}", f"# TYPE {full} {kind}"] + [
        f"{full}{labels} {value}" for labels, value in samples
    ]


class Observe:
    """ASGI middleware, outside every other: sets the request id on each response, and
    counts chat requests and the error statuses they are answered with (a stream that fails
    after it started reports its error through ``Metrics.failed`` itself).

    It also answers an unexpected exception (a bug) with OpenAI's 500 body: Starlette's own
    handler for those runs outside every middleware, so its answer would lack the id and
    the count. The exception is raised on, for Starlette and uvicorn to log."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k.lower() == b"x-request-id"), b"")
        given_text = given.decode("latin-1")
        request_id = given_text if _CLIENT_ID.fullmatch(given_text) else uuid.uuid4().hex
        counted = scope["path"] == CHAT_PATH
        if counted:
            self.metrics.requests += 1

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                if counted and message["status"] >= 400:
                    self.metrics.failed(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not started:
                error = internal_error()
                await JSONResponse(error.body(), status_code=error.status)(
                    scope, receive, send_with_id
                )
            raise
