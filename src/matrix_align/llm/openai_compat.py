"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama, OpenAI) as a ChatModel.

Why one backend for all of them: they share the chat-completions wire format, and differ
only in how a request asks for schema-constrained decoding. Each ``dialect`` sends the
schema in the field that server enforces:

- ``openai`` / ``llamacpp``: ``response_format={"type": "json_schema", ...}``; ``strict`` is
  set only when the schema meets OpenAI's strict subset, because OpenAI rejects a strict
  request whose schema does not (every object closed and fully required, known keywords).
- ``vllm``: ``structured_outputs={"json": schema}`` (vLLM >= 0.10.2; vLLM ignores unknown
  fields, so the wrong name silently gives unconstrained output), or ``guided_json`` when
  the server's ``/version`` says it is older.
- ``ollama``: ``response_format`` json_schema, which Ollama's ``/v1`` endpoint turns into its
  native ``format`` (its ``/v1`` endpoint does not read a top-level ``format``).
- ``auto``: chosen per endpoint from ``GET /models`` ``owned_by`` on ``check()`` or the first
  call.

Whatever the server did, the reply is parsed with ``parse_json`` (None when not JSON);
validation against the caller's pydantic model happens above the backend.

Several base URLs spread requests by load: each call goes to the endpoint with the fewest
requests in flight (ties: fewest served so far, then list order), and each endpoint takes at
most ``max_in_flight`` at once, so a fleet of continuous-batching servers stays evenly full.

Retries are off in the ``openai`` client (``max_retries=0``): ``RetryingModel`` owns them, so
one policy covers every backend. ``timeout_s`` is a deadline for the whole request: the HTTP
client's own timeout bounds each read, so a server that sends a byte now and then would
otherwise hold a request forever. Errors map to ``TransientBackendError`` (429, 5xx, malformed
body; ``BackendUnreachable``, a kind of it, for a connection that failed or timed out) or
``PermanentBackendError`` (other 4xx). The API key is read from
the environment variable named by ``api_key_env`` and never appears in a repr or a message.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import httpx
import openai
from openai import AsyncOpenAI

from matrix_align.errors import (
    BackendUnavailable,
    BackendUnreachable,
    MatrixAlignError,
    PermanentBackendError,
    TransientBackendError,
)
from matrix_align.llm.base import (
    ChatModel,
    Completion,
    Message,
    chat_request,
    parse_json,
    schema_name,
)
from matrix_align.llm.retry_after import retry_after_s
from matrix_align.redact import redact, register_secret

Dialect = Literal["auto", "openai", "vllm", "ollama", "llamacpp"]
DIALECTS: tuple[str, ...] = get_args(Dialect)

# Local servers ignore the key, but the client refuses an empty one.
PLACEHOLDER_API_KEY = "not-needed"
# The first vLLM release that reads ``structured_outputs`` (older ones read ``guided_json``).
_VLLM_STRUCTURED_OUTPUTS_SINCE = (0, 10, 2)

# Keywords OpenAI's strict mode accepts; a schema using any other one is sent non-strict.
_STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const",
        "anyOf", "$ref", "$defs", "definitions", "description", "title", "pattern", "format",
        "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "minItems", "maxItems",
    }
)  # fmt: skip


def dialect_from_owned_by(owned_by: str | None) -> str:
    """The dialect a server speaks, from the ``owned_by`` of its ``/models`` entries."""
    owner = (owned_by or "").lower()
    if owner == "vllm":
        return "vllm"
    if owner in ("llamacpp", "llama.cpp"):
        return "llamacpp"
    if owner in ("library", "ollama"):
        return "ollama"
    return "openai"


def strict_compatible(schema: dict[str, Any]) -> bool:
    """Whether OpenAI's strict mode accepts ``schema`` as it is.

    Strict mode needs an object at the root, ``additionalProperties: false`` and every
    property required on each object, and only the keywords it supports. We check rather
    than rewrite the schema: rewriting (closing objects, requiring optional fields) would
    change what the caller's pydantic model accepts.
    """
    if schema.get("type") != "object":
        return False

    def ok(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if any(key not in _STRICT_KEYWORDS for key in node):
            return False
        kind = node.get("type")
        if kind == "object" or (isinstance(kind, list) and "object" in kind):
            props = node.get("properties", {})
            if node.get("additionalProperties") is not False:
                return False
            if set(node.get("required", [])) != set(props):
                return False
            if not all(ok(sub) for sub in props.values()):
                return False
        if "items" in node and not ok(node["items"]):
            return False
        if "anyOf" in node and not all(ok(sub) for sub in node["anyOf"]):
            return False
        for defs in ("$defs", "definitions"):
            if defs in node and not all(ok(sub) for sub in node[defs].values()):
                return False
        return True

    return ok(schema)


def structured_output_params(
    dialect: str, schema: dict[str, Any], *, vllm_legacy: bool = False
) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create`` that ask for ``schema``.

    Returns either ``{"response_format": ...}`` or ``{"extra_body": ...}`` (fields the
    ``openai`` client does not know go in ``extra_body``, which it merges into the JSON).
    """
    if dialect == "vllm":
        if vllm_legacy:
            return {"extra_body": {"guided_json": schema}}
        return {"extra_body": {"structured_outputs": {"json": schema}}}
    json_schema: dict[str, Any] = {"name": schema_name(schema), "schema": schema}
    if dialect in ("openai", "llamacpp") and strict_compatible(schema):
        json_schema["strict"] = True
    return {"response_format": {"type": "json_schema", "json_schema": json_schema}}


def check_base_url(url: str) -> None:
    """A clear error for a base URL that cannot be requested (before any connection)."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        reason = str(exc) or "it cannot be parsed"
    else:
        reason = ""
        if parsed.scheme not in ("http", "https"):
            reason = "it must start with http:// or https://"
        elif not parsed.host:
            reason = "it names no host"
        elif port is not None and not 0 < port < 65536:
            reason = f"port {port} is out of range (1-65535)"
    if reason:
        raise MatrixAlignError(
            f"Bad --base-url {redact(url)}: {reason}.",
            hint="write it like http://localhost:8000/v1",
        )


def reply_char_limit(max_tokens: int) -> int:
    """The most characters a reply of ``max_tokens`` tokens can plausibly hold: a token is at
    most a few tens of characters, with a floor for tiny caps."""
    return max(16_384, 32 * max_tokens)


def _token_count(value: Any) -> int:
    """A usage figure as reported; anything but a number (None, text) counts as unknown, 0,
    rather than failing a reply whose text is fine."""
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _parse_version(text: str) -> tuple[int, ...] | None:
    match = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


@dataclass
class _Endpoint:
    """One server: its URL, how busy it is, and what it speaks (once known)."""

    url: str
    dialect: str | None = None
    vllm_legacy: bool = False
    in_flight: int = 0
    served: int = 0
    served_models: list[str] = field(default_factory=list)


async def _within(seconds: float, request: Any, url: str) -> Any:
    """Await ``request`` under a deadline for the whole of it; running out is reported as
    the client's own timeout, so every caller maps it one way."""
    try:
        async with asyncio.timeout(seconds):
            return await request
    except TimeoutError:
        raise openai.APITimeoutError(request=httpx.Request("POST", url)) from None


class OpenAICompatModel(ChatModel):
    """A ChatModel over one or more OpenAI-compatible servers (see the module docstring).

    ``timeout_s`` bounds one request; ``check_timeout_s`` bounds the ``GET /models`` used by
    ``check()`` and dialect detection, so an unreachable server is reported in seconds.
    Use the model from one event loop at a time; it rebuilds its HTTP clients when it sees a
    new loop (e.g. a preflight and a run under two ``asyncio.run`` calls).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_in_flight: int = 8,
        timeout_s: float = 300.0,
        dialect: Dialect = "auto",
        check_timeout_s: float = 5.0,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        urls = [u.rstrip("/") for u in urls if u and u.strip()]
        if not urls:
            raise ValueError("OpenAICompatModel needs at least one base_url")
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        for url in urls:
            check_base_url(url)
        self.model = model
        self.name = f"openai:{model}"
        # The names the server gave its answers (e.g. a dated snapshot of an alias), for
        # provenance: what answered, not only what was asked for.
        self.reported_models: set[str] = set()
        self.api_key_env = api_key_env
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.check_timeout_s = check_timeout_s
        self.dialect: Dialect = dialect
        register_secret(os.environ.get(api_key_env))
        self._endpoints = [
            _Endpoint(url, dialect=None if dialect == "auto" else dialect) for url in urls
        ]
        # Per-event-loop state: httpx clients and asyncio primitives belong to one loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, AsyncOpenAI] = {}
        self._slot_freed: asyncio.Condition | None = None
        self._detect_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        urls = [e.url for e in self._endpoints]
        return (
            f"OpenAICompatModel(base_url={urls!r}, model={self.model!r}, "
            f"dialect={self.dialect!r}, max_in_flight={self.max_in_flight})"
        )

    @property
    def base_urls(self) -> list[str]:
        return [e.url for e in self._endpoints]

    # -- plumbing --------------------------------------------------------------------------

    def _api_key(self) -> str:
        return os.environ.get(self.api_key_env) or PLACEHOLDER_API_KEY

    def _redact(self, text: str) -> str:
        """Remove the key from text a server echoed back (OpenAI quotes part of a bad key)."""
        register_secret(os.environ.get(self.api_key_env))
        return redact(text)

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._clients = {}
        self._slot_freed = asyncio.Condition()
        self._detect_lock = asyncio.Lock()

    def _client(self, url: str) -> AsyncOpenAI:
        self._bind_loop()
        client = self._clients.get(url)
        if client is None:
            client = AsyncOpenAI(
                base_url=url, api_key=self._api_key(), max_retries=0, timeout=self.timeout_s
            )
            self._clients[url] = client
        return client

    async def aclose(self) -> None:
        """Close the pooled HTTP clients (optional; saves sockets in tests and long runs).

        Clients opened under an event loop that has since ended cannot be closed from
        another loop; they are dropped instead.
        """
        clients, self._clients = self._clients, {}
        if self._loop is not asyncio.get_running_loop():
            return
        for client in clients.values():
            await client.close()

    async def _acquire(self) -> _Endpoint:
        self._bind_loop()
        assert self._slot_freed is not None
        async with self._slot_freed:
            while True:
                free = [e for e in self._endpoints if e.in_flight < self.max_in_flight]
                if free:
                    best = min(free, key=lambda e: (e.in_flight, e.served))
                    best.in_flight += 1
                    best.served += 1
                    return best
                await self._slot_freed.wait()

    async def _release(self, endpoint: _Endpoint) -> None:
        endpoint.in_flight -= 1
        if self._slot_freed is not None:
            async with self._slot_freed:
                self._slot_freed.notify()

    # -- checks and detection --------------------------------------------------------------

    async def _list_models(self, endpoint: _Endpoint) -> list[Any]:
        """``GET /models`` with the short timeout; raises openai's errors as they are.

        A client of its own, closed at once: a preflight often runs under its own
        ``asyncio.run``, and pooled connections would outlive that loop.
        """
        async with AsyncOpenAI(
            base_url=endpoint.url,
            api_key=self._api_key(),
            max_retries=0,
            timeout=self.check_timeout_s,
        ) as client:
            page = await _within(
                self.check_timeout_s, client.models.list(), f"{endpoint.url}/models"
            )
            return list(page.data)

    async def _vllm_is_legacy(self, endpoint: _Endpoint) -> bool:
        """Whether a vLLM server predates ``structured_outputs`` (its ``/version`` < 0.10.2).

        ``/version`` sits beside ``/v1``; when it is missing or unreadable we assume a
        current vLLM.
        """
        root = re.sub(r"/v1$", "", endpoint.url)
        try:
            async with httpx.AsyncClient(timeout=self.check_timeout_s) as http:
                response = await http.get(f"{root}/version")
            version = _parse_version(str(response.json().get("version", "")))
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return version is not None and version < _VLLM_STRUCTURED_OUTPUTS_SINCE

    async def _detect(self, endpoint: _Endpoint, models: list[Any]) -> None:
        ours = next((m for m in models if getattr(m, "id", None) == self.model), None)
        first = ours or (models[0] if models else None)
        endpoint.dialect = dialect_from_owned_by(getattr(first, "owned_by", None))
        if endpoint.dialect == "vllm":
            endpoint.vllm_legacy = await self._vllm_is_legacy(endpoint)

    async def _ensure_dialect(self, endpoint: _Endpoint) -> None:
        """Detect an endpoint's dialect once, on the first structured call to it."""
        if endpoint.dialect is not None:
            return
        assert self._detect_lock is not None
        async with self._detect_lock:
            if endpoint.dialect is not None:
                return
            try:
                models = await self._list_models(endpoint)
            except openai.APIStatusError as exc:
                if exc.status_code != 404:
                    raise self._map_error(exc, endpoint) from None
                models = []  # no /models on this server: speak plain OpenAI
            except (openai.APIConnectionError, ValueError) as exc:
                raise self._map_error(exc, endpoint) from None
            await self._detect(endpoint, models)

    async def check(self) -> None:
        """Fail fast when a server cannot serve: unreachable, key refused, model not served.

        Also settles each endpoint's dialect under ``auto``, so the first real call does not
        pay for detection.
        """
        for endpoint in self._endpoints:
            try:
                models = await self._list_models(endpoint)
            except ValueError:
                raise BackendUnavailable(
                    f"The server at {endpoint.url} answered GET /models with a body that is "
                    "not JSON; it does not look like an OpenAI-compatible server.",
                    hint="check --base-url (it usually ends in /v1)",
                ) from None
            except openai.APIConnectionError as exc:
                if isinstance(exc, openai.APITimeoutError):
                    why = f"no answer to GET /models within {self.check_timeout_s:g} s"
                else:
                    cause = exc.__cause__ or exc.__context__
                    why = (
                        f"GET /models failed: {type(cause).__name__ if cause else 'no connection'}"
                    )
                raise BackendUnavailable(
                    f"Cannot reach the OpenAI-compatible server at {endpoint.url} ({why}).",
                    hint="start the server (e.g. `vllm serve MODEL`, `ollama serve`, "
                    "`llama-server -m FILE --port 8080`) or check --base-url "
                    "(it usually ends in /v1)",
                ) from None
            except openai.APIStatusError as exc:
                if exc.status_code in (401, 403):
                    raise BackendUnavailable(
                        f"The server at {endpoint.url} refused the API key "
                        f"(HTTP {exc.status_code}).",
                        hint=f"set the environment variable {self.api_key_env} to a key "
                        "this server accepts, or choose another variable with --api-key-env",
                    ) from None
                if exc.status_code == 404:
                    # Some servers have no /models; we cannot verify the model name there.
                    if self.dialect == "auto":
                        endpoint.dialect = "openai"
                    continue
                raise BackendUnavailable(
                    f"The server at {endpoint.url} answered GET /models with HTTP "
                    f"{exc.status_code}: {self._short_reason(exc)}",
                    hint="check that the server has finished starting, then retry",
                ) from None
            ids = [str(getattr(m, "id", "")) for m in models]
            if self.model not in ids and f"{self.model}:latest" not in ids:
                served = ", ".join(ids[:20]) or "none"
                raise BackendUnavailable(
                    f"The server at {endpoint.url} does not serve model {self.model!r}; "
                    f"it serves: {served}.",
                    hint="pass one of those names with --model (or load the model on the "
                    "server, e.g. `ollama pull NAME`)",
                )
            endpoint.served_models = ids
            if self.dialect == "auto":
                await self._detect(endpoint, models)

    # -- errors ----------------------------------------------------------------------------

    def _reported(self, response: Any) -> str:
        """The model name the server put in its answer (ours when it gave none)."""
        reported = getattr(response, "model", None)
        if reported:
            self.reported_models.add(str(reported))
        return str(reported or self.model)

    def _short_reason(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        message: Any = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
            message = message or body.get("detail") or body.get("message")
        text = str(message) if message else (exc.message or "")
        text = " ".join(text.split())
        return self._redact(text[:200])

    def _map_error(self, exc: Exception, endpoint: _Endpoint) -> Exception:
        """openai's exception -> ours, with status and a short reason; never the key.

        The result carries ``status`` (HTTP status or None) and, for a 429/5xx that said
        when to come back (``Retry-After`` in seconds or as a date, or ``retry-after-ms``),
        ``retry_after_s``, which ``RetryingModel`` honours.
        """
        where = f"{self.name} at {endpoint.url}"
        status: int | None = None
        retry_after: float | None = None
        if isinstance(exc, openai.APITimeoutError):
            err: Exception = BackendUnreachable(f"{where}: timed out after {self.timeout_s:g} s")
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = type(cause).__name__ if cause else "connection error"
            err = BackendUnreachable(f"{where}: connection failed ({reason})")
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            text = f"{where}: HTTP {status}: {self._short_reason(exc)}"
            transient = status == 429 or status >= 500 or status in (408, 409)
            err = TransientBackendError(text) if transient else PermanentBackendError(text)
            if transient:
                retry_after = retry_after_s(exc.response.headers)
        else:  # a body that is not JSON, or JSON without choices
            status = 200
            err = TransientBackendError(f"{where}: malformed response body")
        err.status = status  # type: ignore[attr-defined]
        err.retry_after_s = retry_after  # type: ignore[attr-defined]
        return err

    # -- the call --------------------------------------------------------------------------

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        endpoint = await self._acquire()
        try:
            kwargs = {
                "model": self.model,
                **chat_request(messages, max_tokens, temperature, seed),
            }
            if schema is not None:
                await self._ensure_dialect(endpoint)
                kwargs.update(
                    structured_output_params(
                        endpoint.dialect or "openai", schema, vllm_legacy=endpoint.vllm_legacy
                    )
                )
            client = self._client(endpoint.url)
            started = time.perf_counter()
            try:
                response = await _within(
                    self.timeout_s,
                    client.chat.completions.create(**kwargs),
                    f"{endpoint.url}/chat/completions",
                )
            except (openai.APIError, ValueError) as exc:
                raise self._map_error(exc, endpoint) from None
            latency = time.perf_counter() - started
        finally:
            await self._release(endpoint)
        return self._to_completion(response, latency, schema, endpoint, max_tokens)

    def _to_completion(
        self,
        response: Any,
        latency: float,
        schema: dict[str, Any] | None,
        endpoint: _Endpoint,
        max_tokens: int,
    ) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise self._map_error(ValueError("no choices"), endpoint)
        choice = choices[0]
        text = (choice.message.content if choice.message else None) or ""
        limit = reply_char_limit(max_tokens)
        if len(text) > limit:
            # A server that ignores max_tokens (or a hostile one) would otherwise have its
            # reply copied into every later prompt and into the trace, hundreds of MB.
            raise PermanentBackendError(
                f"{endpoint.url}: the reply has {len(text):,} characters, more than "
                f"max_tokens={max_tokens} can produce ({limit:,}); the server ignored the cap"
            )
        usage = getattr(response, "usage", None)
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        return Completion(
            text=text,
            parsed=parse_json(text) if schema is not None else None,
            prompt_tokens=_token_count(getattr(usage, "prompt_tokens", 0)),
            completion_tokens=_token_count(getattr(usage, "completion_tokens", 0)),
            cached_tokens=_token_count(getattr(details, "cached_tokens", 0)),
            latency_s=latency,
            finish_reason=str(choice.finish_reason or "stop"),
            model=self._reported(response),
        )
