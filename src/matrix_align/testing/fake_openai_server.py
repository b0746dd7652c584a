"""A loopback OpenAI-compatible server for tests and throughput benchmarks.

Why it exists: the ``openai`` backend, the batch runner's fault handling and the benchmarks
in bench/ all need a server that behaves like vLLM, llama.cpp or Ollama (dialect fields,
usage numbers, a continuous-batching latency curve, the failures real servers produce)
without a GPU, a model file or the network. It uses only the standard library, binds
127.0.0.1 unless told otherwise, and stops when its ``with`` block ends.

Usage in a test::

    with FakeOpenAIServer(owned_by="vllm", fail_500=0.2, seed=1) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=srv.models[0])
        ...
        assert srv.requests[0]["dialect_field"] == "structured_outputs"

From a shell (runs until Ctrl-C)::

    python -m matrix_align.testing.fake_openai_server --port 8000 --owned-by vllm \
        --base-latency 0.05 --per-token 0.002 --alpha 0.02

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (non-streaming),
``GET /version`` (only when ``version`` is set, as vLLM serves it) and ``GET /health``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The function that writes the assistant's reply. It receives the request body (a dict) and
# the JSON schema the request constrained decoding to (None without one), and returns the
# reply text.
Responder = Callable[[dict[str, Any], dict[str, Any] | None], str]

_FAULT_KINDS = ("http_500", "http_429", "timeout", "malformed_body", "invalid_json")


def minimal_instance(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The smallest reasonable value that satisfies ``schema``.

    Why "minimal": tests need a reply that validates without knowing the schema, and the
    shortest one keeps token counts (and so simulated latency) predictable. Covers what
    pydantic emits: ``$ref`` into ``$defs``, ``anyOf``, ``enum``/``const``, objects (required
    properties), arrays (``minItems``), strings (``minLength``/``maxLength``), numbers with
    bounds, booleans and null.
    """
    root = root if root is not None else schema
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            if part:
                target = target.get(part, {}) if isinstance(target, dict) else {}
        return minimal_instance(target if isinstance(target, dict) else {}, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if options:
            non_null = [o for o in options if o.get("type") != "null"]
            return minimal_instance((non_null or options)[0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        required = schema.get("required", [])
        return {key: minimal_instance(props.get(key, {}), root) for key in required}
    if kind == "array":
        items = schema.get("items", {})
        count = int(schema.get("minItems", 0))
        return [minimal_instance(items if isinstance(items, dict) else {}, root)] * count
    if kind == "string":
        text = "text"
        low = int(schema.get("minLength", 0))
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if "maxLength" in schema:
            text = text[: int(schema["maxLength"])]
        return text
    if kind in ("integer", "number"):
        value: float = 0
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        if "exclusiveMinimum" in schema:
            value = max(value, schema["exclusiveMinimum"] + 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        if "exclusiveMaximum" in schema:
            value = min(value, schema["exclusiveMaximum"] - 1)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    return None


def default_responder(body: dict[str, Any], schema: dict[str, Any] | None) -> str:
    """A minimal valid instance of the schema, or a short echo of the last user message."""
    if schema is not None:
        return json.dumps(minimal_instance(schema))
    user = [m for m in body.get("messages", []) if m.get("role") == "user"]
    last = str(user[-1].get("content", "")) if user else ""
    return f"echo: {last[:40]}"


def find_schema(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON schema a request asks for and the field that carried it.

    The field names the dialect: ``response_format`` (OpenAI, llama.cpp, Ollama's /v1),
    ``structured_outputs`` (vLLM >= 0.10.2), ``guided_json`` (older vLLM), ``format``
    (Ollama's native API).
    """
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        inner = rf.get("json_schema") or {}
        return inner.get("schema"), "response_format"
    so = body.get("structured_outputs")
    if isinstance(so, dict) and "json" in so:
        raw = so["json"]
        return (json.loads(raw) if isinstance(raw, str) else raw), "structured_outputs"
    if "guided_json" in body:
        raw = body["guided_json"]
        return (json.loads(raw) if isinstance(raw, str) else raw), "guided_json"
    if isinstance(body.get("format"), dict):
        return body["format"], "format"
    return None, None


def _tokens(text: str) -> int:
    """A tokenizer-free count: about four characters a token, as for English text."""
    return max(1, (len(text) + 3) // 4)


class FakeOpenAIServer:
    """An OpenAI-compatible HTTP server in a background thread (see the module docstring).

    Args:
        models: model ids served by ``GET /v1/models``; a chat request naming another
            model gets a 404 like real servers.
        owned_by: the ``owned_by`` of every model, which is how clients tell servers apart:
            ``"vllm"``, ``"llamacpp"``, ``"library"`` (Ollama), ``"openai"``...
        responder: ``f(body, schema) -> reply text``; default: a minimal valid instance of
            the schema, else a short echo.
        base_latency_s, per_token_s, alpha: the latency model of a continuous-batching
            engine: a request takes ``(base_latency_s + per_token_s * completion_tokens) *
            (1 + alpha * (in_flight - 1))`` seconds, ``in_flight`` counted when it arrives
            (itself included). All zero by default: replies are immediate.
        fail_500, fail_429, fail_timeout, fail_malformed_body, fail_invalid_json: the
            fraction of chat requests that fail that way (they are exclusive; their sum must
            be <= 1). ``timeout`` holds the request for ``hang_s`` (beyond the client's
            timeout) then answers normally; ``malformed_body`` answers 200 with a body that
            is not JSON; ``invalid_json`` answers a schema request with content that is not
            JSON (requests without a schema are answered normally).
        hang_s: how long a ``timeout`` fault holds the request; it ends early when the
            server stops, so a ``with`` block never waits for it.
        rate_limit_first: the first this many chat requests are refused with 429 and
            ``rate_limit_headers`` (default ``Retry-After: 30``), as a hosted API answers
            a client over its per-minute limit; counted in ``rate_limited``.
        seed: seeds the fault RNG, so a fault sequence is reproducible (for requests that
            arrive in the same order).
        version: when set, ``GET /version`` answers ``{"version": version}`` as vLLM does.
        require_api_key: when set, requests without ``Authorization: Bearer <key>`` get 401.
        host, port: the bind address; port 0 picks a free port. Keep 127.0.0.1.

    Attributes (read them after requests finished): ``base_url`` (``http://host:port/v1``),
    ``requests`` (one dict per chat request: ``body``, ``schema``, ``dialect_field``,
    ``fault``, ``in_flight_at_arrival``), ``max_in_flight`` (highest number of chat
    requests being served at once), ``fault_counts``.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] = ("fake-model",),
        owned_by: str = "fake",
        responder: Responder | None = None,
        base_latency_s: float = 0.0,
        per_token_s: float = 0.0,
        alpha: float = 0.0,
        fail_500: float = 0.0,
        fail_429: float = 0.0,
        fail_timeout: float = 0.0,
        fail_malformed_body: float = 0.0,
        fail_invalid_json: float = 0.0,
        hang_s: float = 30.0,
        rate_limit_first: int = 0,
        rate_limit_headers: dict[str, str] | None = None,
        seed: int = 0,
        version: str | None = None,
        require_api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        rates = (fail_500, fail_429, fail_timeout, fail_malformed_body, fail_invalid_json)
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault fractions must be >= 0 and sum to at most 1")
        self.models = list(models)
        self.owned_by = owned_by
        self.responder: Responder = responder or default_responder
        self.base_latency_s = base_latency_s
        self.per_token_s = per_token_s
        self.alpha = alpha
        self.fault_rates = dict(zip(_FAULT_KINDS, rates, strict=True))
        self.hang_s = hang_s
        self.rate_limit_first = rate_limit_first
        self.rate_limit_headers = dict(rate_limit_headers or {"Retry-After": "30"})
        self.rate_limited = 0
        self.version = version
        self.require_api_key = require_api_key
        self.requests: list[dict[str, Any]] = []
        self.fault_counts: dict[str, int] = dict.fromkeys(_FAULT_KINDS, 0)
        self.in_flight = 0
        self.max_in_flight = 0
        self._host = host
        self._port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._seen_prefixes: set[str] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind and serve in a daemon thread; returns self so ``srv = X().start()`` works."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self._host, self._port), _make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; hanging ``timeout`` faults end at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running; use it in a `with` block")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What a client passes as ``base_url``: ``http://127.0.0.1:<port>/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    def clear(self) -> None:
        """Forget recorded requests and counters (the fault RNG keeps its state)."""
        with self._lock:
            self.requests.clear()
            self.fault_counts = dict.fromkeys(_FAULT_KINDS, 0)
            self.max_in_flight = self.in_flight

    # -- behaviour -------------------------------------------------------------------------

    def _draw_fault(self) -> str | None:
        draw = self._rng.random()
        edge = 0.0
        for kind, rate in self.fault_rates.items():
            edge += rate
            if draw < edge:
                return kind
        return None

    def _cached_tokens(self, messages: list[Any]) -> int:
        """Tokens of the longest message prefix seen before: a whole-message prefix cache,
        enough for benchmarks to see whether prompts keep a stable prefix."""
        cached_chars, chars, digest = 0, 0, hashlib.sha256()
        for message in messages:
            encoded = json.dumps(message, sort_keys=True)
            digest.update(encoded.encode())
            key = digest.hexdigest()
            chars += len(str(message.get("content", ""))) if isinstance(message, dict) else 0
            if key in self._seen_prefixes:
                cached_chars = chars
            elif len(self._seen_prefixes) < 100_000:
                self._seen_prefixes.add(key)
        return (cached_chars + 3) // 4  # rounded as _tokens rounds, so a full hit is exact

    def handle_chat(self, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        """Serve one chat request: (status, body bytes, extra headers). Runs in a handler
        thread; the latency sleep happens here, outside the lock."""
        schema, field = find_schema(body)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            in_flight = self.in_flight
            fault = self._draw_fault()
            if fault == "invalid_json" and schema is None:
                fault = None
            if fault is not None:
                self.fault_counts[fault] += 1
            if self.rate_limited < self.rate_limit_first:
                self.rate_limited += 1
                fault = "rate_limited"
            self.requests.append(
                {
                    "body": body,
                    "schema": schema,
                    "dialect_field": field,
                    "fault": fault,
                    "in_flight_at_arrival": in_flight,
                }
            )
            messages = body.get("messages", [])
            cached = self._cached_tokens(messages if isinstance(messages, list) else [])
        try:
            return self._answer(body, schema, fault, in_flight, cached)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(
        self,
        body: dict[str, Any],
        schema: dict[str, Any] | None,
        fault: str | None,
        in_flight: int,
        cached: int,
    ) -> tuple[int, bytes, dict[str, str]]:
        if fault == "http_500":
            return _error(500, "internal server error (injected)", "server_error")
        if fault == "http_429":
            status, payload, headers = _error(429, "rate limited (injected)", "rate_limit")
            headers["Retry-After"] = "0"
            return status, payload, headers
        if fault == "rate_limited":
            status, payload, headers = _error(429, "rate limit reached", "rate_limit")
            return status, payload, {**headers, **self.rate_limit_headers}
        if fault == "timeout":
            self._stopping.wait(self.hang_s)
        if body.get("model") not in self.models:
            return _error(404, f"model {body.get('model')!r} not found", "not_found_error")
        content = '{"broken": tru' if fault == "invalid_json" else self.responder(body, schema)
        finish = "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and _tokens(content) > limit:
            content, finish = content[: limit * 4], "length"
        completion_tokens = _tokens(content)
        prompt_text = "".join(
            str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict)
        )
        prompt_tokens = _tokens(prompt_text)
        delay = (self.base_latency_s + self.per_token_s * completion_tokens) * (
            1 + self.alpha * (in_flight - 1)
        )
        if delay > 0:
            self._stopping.wait(delay)
        if fault == "malformed_body":
            return 200, b'{"id": "chatcmpl-broken", "choices": [', {}
        reply = {
            "id": f"chatcmpl-{random.getrandbits(48):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens)},
            },
        }
        return 200, json.dumps(reply).encode(), {}


class _Server(ThreadingHTTPServer):
    """One thread per connection; a deep accept queue so that a benchmark opening hundreds
    of connections at once is not throttled by the listen backlog (default 5)."""

    daemon_threads = True
    request_queue_size = 1024


def _error(status: int, message: str, kind: str) -> tuple[int, bytes, dict[str, str]]:
    payload = {"error": {"message": message, "type": kind, "code": status}}
    return status, json.dumps(payload).encode(), {}


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers and httpx expect

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Silent: test output stays readable."""

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
            # A client that gave up (its timeout) has closed the socket: nothing to do.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        def _authorized(self) -> bool:
            key = server.require_api_key
            if key is None or self.headers.get("Authorization") == f"Bearer {key}":
                return True
            self._send(*_error(401, "invalid api key", "invalid_request_error"))
            return False

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?")[0].rstrip("/")
            if path == "/health":
                self._send(200, b"{}")
            elif path == "/version" and server.version is not None:
                self._send(200, json.dumps({"version": server.version}).encode())
            elif path == "/v1/models":
                if not self._authorized():
                    return
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": server.owned_by}
                    for m in server.models
                ]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            else:
                self._send(*_error(404, f"no route {path}", "not_found_error"))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0].rstrip("/")
            if path != "/v1/chat/completions":
                self._send(*_error(404, f"no route {path}", "not_found_error"))
                return
            if not self._authorized():
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(*_error(400, "request body is not JSON", "invalid_request_error"))
                return
            if body.get("stream"):
                self._send(*_error(400, "streaming is not supported", "invalid_request_error"))
                return
            self._send(*server.handle_chat(body))

    return Handler


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in the foreground (for benchmarks against a separate process)."""
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", action="append", help="served model id (repeatable)")
    parser.add_argument("--owned-by", default="fake", help="vllm, llamacpp, library, ...")
    parser.add_argument("--base-latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--per-token", type=float, default=0.0, help="seconds per token")
    parser.add_argument("--alpha", type=float, default=0.0, help="slowdown per extra request")
    for kind in ("500", "429", "timeout", "malformed-body", "invalid-json"):
        parser.add_argument(f"--fail-{kind}", type=float, default=0.0, metavar="FRACTION")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a timeout fault holds")
    parser.add_argument(
        "--rate-limit-first", type=int, default=0, metavar="N",
        help="refuse the first N chat requests with 429 and --retry-after",
    )  # fmt: skip
    parser.add_argument("--retry-after", default="30", help="Retry-After of those 429s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", dest="server_version", default=None)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        models=args.model or ["fake-model"],
        owned_by=args.owned_by,
        base_latency_s=args.base_latency,
        per_token_s=args.per_token,
        alpha=args.alpha,
        fail_500=args.fail_500,
        fail_429=args.fail_429,
        fail_timeout=args.fail_timeout,
        fail_malformed_body=args.fail_malformed_body,
        fail_invalid_json=args.fail_invalid_json,
        hang_s=args.hang,
        rate_limit_first=args.rate_limit_first,
        rate_limit_headers={"Retry-After": args.retry_after},
        seed=args.seed,
        version=args.server_version,
        host=args.host,
        port=args.port,
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)  # `kill PID` stops it cleanly, as Ctrl-C does
    with server:
        print(f"fake OpenAI-compatible server at {server.base_url} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
