"""The ASGI application (Starlette): routes, the guard in front of them, plain and streamed
answers, and what happens when a client leaves before its answer.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models`` (and ``/v1/models/{id}``),
``GET /v1/matrix/traces/{id}``, and, with no key needed and nothing private in them (as
vLLM serves them): ``GET /health`` (counts of running and queued requests, for probes),
``GET /version`` and ``GET /metrics`` (``observe.py``, which also sets ``x-request-id``).

A client that disconnects mid-scene: the answer task is cancelled (the scene stops at its
next model call, the slot is freed, the record says ``cancelled``), for a plain request as
soon as the server sees the connection close, for a stream when a write fails or the
server sees the close. Requires starlette (the ``serve`` extra).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from matrix_align.llm.base import ChatModel
from matrix_align.provenance import package_version
from matrix_align.reading import InputLimitError, loads_json
from matrix_align.serve import openai_format as fmt
from matrix_align.serve.admission import Admission
from matrix_align.serve.answering import Answerer
from matrix_align.serve.api_errors import APIError, bad_request
from matrix_align.serve.observe import Metrics, Observe
from matrix_align.serve.record import ServeRecord
from matrix_align.serve.request import ChatRequest, parse_chat_request
from matrix_align.serve.settings import ServeSettings
from matrix_align.serve.traces import TraceStore
from matrix_align.simulation.config import SimulationConfig

TRACE_HEADER = "x-matrix-trace-id"
# Routes that need no client key: probes and scrapers, with nothing private in them.
OPEN_PATHS = frozenset({"/health", "/version", "/metrics"})


def create_app(
    model: ChatModel,
    config: SimulationConfig,
    settings: ServeSettings,
    *,
    on_finished: Callable[[ServeRecord], None] | None = None,
) -> Starlette:
    """The server for ``model``, every scene with ``config`` unless a request changes it."""
    store = TraceStore(
        settings.max_traces,
        settings.trace_dir,
        max_bytes=settings.max_trace_bytes,
        folder_max_bytes=settings.trace_dir_max_bytes,
    )
    admission = Admission(settings.max_concurrency, settings.max_queue)
    metrics = Metrics(lambda: admission.running, lambda: admission.waiting)

    def finished(record: ServeRecord) -> None:
        metrics.finished(record)
        if on_finished is not None:
            on_finished(record)

    answerer = Answerer(
        model,
        model_name=settings.model_name,
        gate=settings.gate,
        keywords=settings.keywords,
        admission=admission,
        store=store,
        timeout_s=settings.response_timeout_s,
        max_scene_calls=settings.max_scene_calls,
        max_scene_chars=settings.max_scene_chars,
        on_finished=finished,
    )
    started = int(time.time())

    async def chat_completions(request: Request) -> Response:
        body = await _read_json(request, settings.max_body_bytes)
        chat = parse_chat_request(
            body,
            model_name=settings.model_name,
            base=config,
            conversations=settings.conversations,
            system_messages=settings.system_messages,
        )
        record, ticket = answerer.admit(chat)  # a 503 here, before any response starts
        job = asyncio.create_task(answerer.run(chat, record, ticket))
        job.add_done_callback(_retrieve)
        headers = {TRACE_HEADER: record.id}
        if chat.stream:
            return _JobStream(
                _events(job, record, chat, settings.keepalive_s, metrics),
                job,
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _plain(request, job, record, headers)

    async def list_models(request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [fmt.model_entry(settings.model_name, started)]}
        )

    async def get_model(request: Request) -> Response:
        name = request.path_params["model"]
        if name != settings.model_name:
            raise APIError(
                404, f"The model {name!r} does not exist.", param="model", code="model_not_found"
            )
        return JSONResponse(fmt.model_entry(name, started))

    async def get_trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        found = store.get(trace_id)
        if found is None:
            raise APIError(
                404,
                f"No trace {trace_id!r}: unknown, or older than those kept in memory "
                f"(the newest {settings.max_traces}, within {settings.max_trace_bytes // 2**20}"
                " MB: --max-traces, --max-trace-mb) and in --trace-dir (if set).",
                param="trace_id",
                code="trace_not_found",
            )
        return JSONResponse(found)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "running": admission.running, "queued": admission.waiting}
        )

    async def version(request: Request) -> Response:
        return JSONResponse({"version": package_version()})

    async def show_metrics(request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type=PROMETHEUS_TEXT)

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/v1/matrix/traces/{trace_id}", get_trace, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/metrics", show_metrics, methods=["GET"]),
        ],
        exception_handlers={
            APIError: _api_error_response,
            HTTPException: _http_error_response,
        },  # any other exception: observe.Observe answers it
    )
    app.add_middleware(Guard, api_key=settings.api_key, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(Observe, metrics=metrics)  # outside the guard: its refusals count too
    app.state.admission, app.state.store = admission, store  # for tests and embedding code
    app.state.metrics = metrics
    return app


# -- answers ---------------------------------------------------------------------------------


async def _plain(
    request: Request, job: asyncio.Task[None], record: ServeRecord, headers: dict[str, str]
) -> Response:
    """Wait for the answer, or for the client to leave (then the scene is cancelled)."""
    gone = asyncio.create_task(_disconnected(request.receive))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()
            await asyncio.wait({job})  # let it record the cancellation and free its slot
    if job.cancelled():
        return Response(status_code=499)  # nobody is left to read it
    error = job.exception()
    if isinstance(error, APIError):
        return _error_response(error, headers)
    return JSONResponse(fmt.completion(record), headers=headers)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has closed the connection (the body is already read, so the
    next ASGI message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _events(
    job: asyncio.Task[None],
    record: ServeRecord,
    chat: ChatRequest,
    keepalive_s: float,
    metrics: Metrics,
) -> AsyncIterator[str]:
    """The stream: the role at once (the client knows it is answered), keep-alive comments
    while the scene runs, then the answer as one delta (it exists only once the scene has
    ended), the finish reason, the usage if asked, and ``[DONE]``."""
    yield fmt.sse(fmt.chunk(record, {"role": "assistant", "content": ""}, matrix=False))
    while not job.done():
        await asyncio.wait({job}, timeout=keepalive_s)
        if not job.done():
            yield fmt.KEEPALIVE
    # Cancelled while the stream still runs: only by someone other than this stream (the
    # server stopping); the client must not mistake that for an empty answer.
    error = _CANCELLED if job.cancelled() else job.exception()
    if error is not None:
        # OpenAI's way of failing a stream that has started: an event holding the error.
        body = error.body() if isinstance(error, APIError) else {"error": {"message": "failed"}}
        metrics.failed(error.status if isinstance(error, APIError) else 500)
        yield fmt.sse(body)
        return
    if record.answer:
        yield fmt.sse(fmt.chunk(record, {"content": record.answer}))
    yield fmt.sse(fmt.chunk(record, {}, record.finish_reason or "stop", matrix=True))
    if chat.include_usage:
        yield fmt.sse(fmt.chunk(record, None, usage=True))
    yield fmt.DONE


_CANCELLED = APIError(
    503,
    "The request was cancelled: the server is stopping.",
    type="server_error",
    code="cancelled",
)


class _JobStream(StreamingResponse):
    """A stream that cancels its answer task however the response ends: finished, the
    client gone (Starlette stops the stream when it sees the disconnect), or the server
    shutting down, even before the stream's first byte."""

    def __init__(self, content: AsyncIterator[str], job: asyncio.Task[None], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._job = job

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._job.done():
                self._job.cancel()


# The content type of Prometheus's text exposition format.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a finished task's exception as seen (it reached the client as an error body, or
    nobody was left to tell), so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


async def _read_json(request: Request, max_bytes: int) -> Any:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        # Also shuts out a web page's form posts, which cannot send this type without the
        # browser asking the server's permission first (which it never grants).
        raise bad_request(
            "The body must be JSON, sent with the header Content-Type: application/json."
        )
    size, parts = 0, []
    try:
        async for part in request.stream():
            size += len(part)
            if size > max_bytes:
                raise APIError(
                    413,
                    f"The body is larger than {max_bytes:,} bytes.",
                    code="request_too_large",
                )
            parts.append(part)
    except ClientDisconnect:
        # Gone before the body arrived: nobody reads the answer; an error ends the request
        # without the traceback an unexpected exception would log.
        raise bad_request("The client disconnected while sending the body.") from None
    try:
        return loads_json(b"".join(parts), "The body", parse_constant=_no_constant)
    except InputLimitError as exc:  # nested too deep, a huge integer: a 400, not a 500
        raise bad_request(exc.message) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The body is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- errors ----------------------------------------------------------------------------------


def _error_response(error: APIError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        error.body(), status_code=error.status, headers={**error.headers, **(headers or {})}
    )


async def _api_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return _error_response(exc)


async def _http_error_response(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, wrong method) in OpenAI's shape too."""
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = {
        404: f"No route {request.url.path}: this server serves /v1/chat/completions, "
        "/v1/models and /v1/matrix/traces/{id}.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    return _error_response(APIError(exc.status_code, message, code=kind), dict(exc.headers or {}))


# -- the guard -------------------------------------------------------------------------------


class Guard:
    """Checked before any route: the Host header, then the client's key.

    Host: a server on a loopback address answers only requests addressed to a loopback
    name, because a web page can otherwise point its own domain at 127.0.0.1 (DNS
    rebinding) and have the browser call the server and read its answers and traces.
    Key: with ``--auth-key-env``, every route but ``OPEN_PATHS`` needs ``Authorization:
    Bearer <key>``; compared in constant time.
    """

    def __init__(
        self, app: ASGIApp, api_key: str | None, allowed_hosts: frozenset[str] | None
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            error = self._check(scope["path"], headers)
            if error is not None:
                # Answered before any of the body is read, and the connection closed: a
                # client without the key gets no further with it.
                error.headers = {**error.headers, "Connection": "close"}
                await _error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check(self, path: str, headers: dict[str, str]) -> APIError | None:
        if self.allowed_hosts is not None and _host_name(headers.get("host", "")) not in (
            self.allowed_hosts
        ):
            return APIError(
                403,
                "Requests must be addressed to this server by its loopback name "
                "(127.0.0.1, localhost or ::1).",
                code="host_not_allowed",
            )
        if self.api_key is None or path in OPEN_PATHS:
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return APIError(
                401,
                "You didn't provide an API key: send it as 'Authorization: Bearer <key>' (the "
                "openai client's api_key).",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            return APIError(
                401,
                "Incorrect API key provided.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None


def _host_name(host: str) -> str:
    """The name of a Host header without its port: ``[::1]:8100`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
