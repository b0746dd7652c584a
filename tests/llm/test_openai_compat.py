"""OpenAICompatModel against the loopback fake server: dialects, parsing, load spreading,
error mapping, preflight checks and keeping the API key secret."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from typing import Any

import pytest

from matrix_align.errors import (
    BackendUnavailable,
    BackendUnreachable,
    PermanentBackendError,
    TransientBackendError,
)
from matrix_align.llm.openai_compat import (
    OpenAICompatModel,
    strict_compatible,
    structured_output_params,
)
from matrix_align.testing import FakeOpenAIServer, minimal_instance

MODEL = "fake-model"
USER = [{"role": "user", "content": "Should I tell my friend the truth?"}]

# Closed and fully required: OpenAI's strict mode accepts it.
STRICT_SCHEMA: dict[str, Any] = {
    "title": "Verdict",
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "reason": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2},
    },
    "required": ["ok", "reason", "tags"],
    "additionalProperties": False,
}
# An optional field and maxLength: valid JSON schema, but not strict-mode material.
LOOSE_SCHEMA: dict[str, Any] = {
    "title": "Note",
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 3}, "n": {"type": "integer"}},
    "required": ["text"],
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ask(model: OpenAICompatModel, schema: dict[str, Any] | None = STRICT_SCHEMA, **kw):
    params = {"max_tokens": 64, "temperature": 0.0, "seed": 7, **kw}
    return await model.complete(USER, schema=schema, **params)


@pytest.mark.parametrize(
    ("owned_by", "version", "dialect", "field"),
    [
        ("vllm", None, "vllm", "structured_outputs"),
        ("vllm", "0.9.2", "vllm", "guided_json"),
        ("vllm", "0.11.0", "vllm", "structured_outputs"),
        ("llamacpp", None, "llamacpp", "response_format"),
        ("library", None, "ollama", "response_format"),
        ("openai", None, "openai", "response_format"),
        ("sglang", None, "openai", "response_format"),
    ],
)
async def test_auto_dialect_sends_the_field_the_server_enforces(owned_by, version, dialect, field):
    with FakeOpenAIServer(owned_by=owned_by, version=version) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        await model.check()
        assert [(e.url, e.dialect) for e in model._endpoints] == [(srv.base_url, dialect)]
        result = await ask(model)
        await model.aclose()
    body = srv.requests[0]["body"]
    assert srv.requests[0]["dialect_field"] == field
    assert srv.requests[0]["schema"] == STRICT_SCHEMA
    if field == "response_format":
        spec = body["response_format"]["json_schema"]
        assert spec["name"] == "Verdict"
        # strict only where the server understands it (Ollama ignores the flag).
        assert spec.get("strict") is (True if dialect in ("openai", "llamacpp") else None)
    else:
        assert "response_format" not in body
    assert result.parsed == minimal_instance(STRICT_SCHEMA)


async def test_dialect_detected_on_first_call_without_check():
    with FakeOpenAIServer(owned_by="vllm") as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        await asyncio.gather(ask(model), ask(model))
        await model.aclose()
    assert [r["dialect_field"] for r in srv.requests] == ["structured_outputs"] * 2


async def test_explicit_dialect_overrides_detection():
    with FakeOpenAIServer(owned_by="openai") as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL, dialect="vllm")
        await ask(model)
        await model.aclose()
    assert srv.requests[0]["dialect_field"] == "structured_outputs"


def test_strict_only_for_schemas_that_meet_openai_rules():
    assert strict_compatible(STRICT_SCHEMA)
    assert not strict_compatible(LOOSE_SCHEMA)
    nested_open = {**STRICT_SCHEMA, "properties": {"x": {"type": "object", "properties": {}}}}
    nested_open["required"] = ["x"]
    assert not strict_compatible(nested_open)
    params = structured_output_params("openai", LOOSE_SCHEMA)
    assert "strict" not in params["response_format"]["json_schema"]
    assert params["response_format"]["json_schema"]["schema"] is LOOSE_SCHEMA


async def test_request_parameters_and_completion_fields():
    with FakeOpenAIServer() as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        first = await ask(model, schema=None, temperature=0.3, seed=11, max_tokens=40)
        again = await ask(model, schema=None)  # same messages: the fake prefix cache hits
        await model.aclose()
    body = srv.requests[0]["body"]
    assert (body["temperature"], body["seed"], body["max_tokens"], body["top_p"]) == (
        0.3,
        11,
        40,
        1.0,
    )
    assert first.text.startswith("echo: Should I tell")
    assert first.parsed is None  # no schema, no parsing
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert first.cached_tokens == 0 and again.cached_tokens == again.prompt_tokens
    assert first.finish_reason == "stop" and first.model == MODEL
    assert first.latency_s > 0
    assert model.name == f"openai:{MODEL}"


async def test_invalid_json_content_gives_parsed_none_and_keeps_text():
    with FakeOpenAIServer(fail_invalid_json=1.0) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        result = await ask(model)
        await model.aclose()
    assert result.parsed is None
    assert result.text == '{"broken": tru'


async def test_truncated_reply_reports_length():
    with FakeOpenAIServer(responder=lambda body, schema: "word " * 50) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        result = await ask(model, schema=None, max_tokens=5)
        await model.aclose()
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5


async def test_requests_spread_over_endpoints_by_load():
    with (
        FakeOpenAIServer(base_latency_s=0.15) as one,
        FakeOpenAIServer(base_latency_s=0.15) as two,
    ):
        model = OpenAICompatModel(
            base_url=[one.base_url, two.base_url], model=MODEL, max_in_flight=2
        )
        # Sequential calls alternate: ties go to the endpoint that served fewer.
        for _ in range(2):
            await ask(model, schema=None)
        assert len(one.requests) == len(two.requests) == 1
        # Ten at once: never more than max_in_flight per endpoint, all served, evenly.
        results = await asyncio.gather(*(ask(model, schema=None) for _ in range(10)))
        await model.aclose()
    assert len(results) == 10
    assert one.max_in_flight == two.max_in_flight == 2
    assert len(one.requests) + len(two.requests) == 12
    assert abs(len(one.requests) - len(two.requests)) <= 2


async def test_busy_endpoint_is_avoided():
    with FakeOpenAIServer(base_latency_s=0.3) as slow, FakeOpenAIServer() as fast:
        model = OpenAICompatModel(base_url=[slow.base_url, fast.base_url], model=MODEL)
        pending = asyncio.create_task(ask(model, schema=None))  # occupies the first endpoint
        await asyncio.sleep(0.05)
        for _ in range(3):
            await ask(model, schema=None)
        await pending
        await model.aclose()
    assert len(slow.requests) == 1 and len(fast.requests) == 3


async def test_unreachable_server_fails_fast_naming_the_url():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    model = OpenAICompatModel(base_url=url, model=MODEL)
    started = time.perf_counter()
    with pytest.raises(BackendUnavailable) as info:
        await model.check()
    assert time.perf_counter() - started < 5
    assert url in str(info.value)
    assert info.value.hint and "--base-url" in info.value.hint


async def test_check_lists_served_models_when_ours_is_missing():
    with FakeOpenAIServer(models=["qwen2.5:0.5b", "llama3:latest"]) as srv:
        with pytest.raises(BackendUnavailable) as info:
            await OpenAICompatModel(base_url=srv.base_url, model="missing").check()
        # Ollama's implicit ":latest" tag counts as served.
        await OpenAICompatModel(base_url=srv.base_url, model="llama3").check()
    assert "qwen2.5:0.5b" in str(info.value) and "llama3:latest" in str(info.value)


async def test_check_on_rejected_key_names_the_variable_not_the_value(monkeypatch):
    secret = "sk-test-VERYSECRET-0123456789"
    monkeypatch.setenv("MATRIX_TEST_KEY", secret)
    with FakeOpenAIServer(require_api_key="the-right-key") as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL, api_key_env="MATRIX_TEST_KEY")
        with pytest.raises(BackendUnavailable) as info:
            await model.check()
    assert "MATRIX_TEST_KEY" in str(info.value)
    assert secret not in str(info.value)


async def test_key_from_env_is_sent_and_never_shown(monkeypatch):
    secret = "sk-test-VERYSECRET-0123456789"
    monkeypatch.setenv("MATRIX_TEST_KEY", secret)

    class EchoingServer(FakeOpenAIServer):
        """Answers 401 quoting the key back, as OpenAI quotes part of a bad key."""

        def handle_chat(self, body):
            self.requests.append({"body": body})
            message = f"Incorrect API key provided: {secret}"
            return 401, json.dumps({"error": {"message": message}}).encode(), {}

    with FakeOpenAIServer(require_api_key=secret) as good, EchoingServer() as bad:
        model = OpenAICompatModel(
            base_url=good.base_url, model=MODEL, api_key_env="MATRIX_TEST_KEY"
        )
        await model.check()  # the key from the env var was accepted
        await ask(model)
        rejected = OpenAICompatModel(
            base_url=bad.base_url, model=MODEL, api_key_env="MATRIX_TEST_KEY"
        )
        with pytest.raises(PermanentBackendError) as info:
            await ask(rejected, schema=None)
        await model.aclose()
        await rejected.aclose()
    shown = " ".join([str(info.value), repr(info.value), repr(model), repr(rejected)])
    assert "401" in str(info.value)
    assert secret not in shown and secret[:8] not in shown


@pytest.mark.parametrize(
    ("fault", "status"),
    [("fail_500", 500), ("fail_429", 429), ("fail_malformed_body", 200), ("fail_timeout", None)],
)
async def test_server_failures_are_transient(fault, status):
    with FakeOpenAIServer(**{fault: 1.0}, hang_s=2.0) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL, timeout_s=0.3)
        with pytest.raises(TransientBackendError) as info:
            await ask(model, schema=None)
        await model.aclose()
    assert info.value.status == status
    assert isinstance(info.value, BackendUnreachable) == (fault == "fail_timeout")
    if status is not None and status != 200:
        assert str(status) in str(info.value)


async def test_connection_refused_on_a_call_is_transient_and_unreachable():
    """Retried like any transient failure, and told apart from a server that answered with
    an error (serve answers 503 for it, 502 for the other)."""
    model = OpenAICompatModel(base_url=f"http://127.0.0.1:{closed_port()}/v1", model=MODEL)
    with pytest.raises(BackendUnreachable):
        await ask(model, schema=None)


async def test_unknown_model_on_a_call_is_permanent():
    with FakeOpenAIServer() as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model="not-served")
        with pytest.raises(PermanentBackendError) as info:
            await ask(model, schema=None)
        await model.aclose()
    assert info.value.status == 404


def test_model_survives_a_new_event_loop():
    """The CLI may preflight and run under separate asyncio.run calls."""

    async def run_once(schema: dict[str, Any] | None) -> Any:
        try:
            return await ask(model, schema=schema)
        finally:
            await model.aclose()

    with FakeOpenAIServer() as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        asyncio.run(model.check())
        first = asyncio.run(run_once(STRICT_SCHEMA))
        second = asyncio.run(run_once(None))
    assert first.parsed is not None and second.text.startswith("echo:")


def test_minimal_instance_handles_pydantic_refs_and_bounds():
    schema = {
        "$defs": {
            "Role": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 6}},
                "required": ["name"],
            }
        },
        "type": "object",
        "properties": {
            "roles": {"type": "array", "items": {"$ref": "#/$defs/Role"}, "minItems": 1},
            "score": {"type": "number", "minimum": 1.5},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "maximum": -1}]},
            "short": {"type": "string", "maxLength": 2},
        },
        "required": ["roles", "score", "maybe", "short"],
    }
    assert minimal_instance(schema) == {
        "roles": [{"name": "textxx"}],
        "score": 1.5,
        "maybe": -1,
        "short": "te",
    }


class DripServer:
    """A loopback server that answers every request with headers, then one body byte every
    0.1 s and never finishes: each read succeeds, the request never ends."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        import threading

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")  # fmt: skip
            while not self.stop.is_set():
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


async def test_a_server_that_drips_bytes_hits_the_request_deadline():
    server = DripServer()
    try:
        model = OpenAICompatModel(server.base_url, MODEL, timeout_s=0.8, check_timeout_s=0.5)
        started = time.perf_counter()
        with pytest.raises(TransientBackendError, match="timed out after 0.8 s"):
            await model.complete(USER, max_tokens=8, temperature=0.0)
        with pytest.raises(BackendUnavailable, match="within 0.5 s"):
            await model.check()
        assert time.perf_counter() - started < 5
        await model.aclose()
    finally:
        server.close()


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://127.0.0.1:99999/v1", "port 99999 is out of range"),
        ("http://[::1/v1", "Bad --base-url"),
        ("localhost:8000/v1", "http:// or https://"),
    ],
)
def test_malformed_base_urls_are_clear_errors(url, why):
    from matrix_align.errors import MatrixAlignError

    with pytest.raises(MatrixAlignError, match=re.escape(why)):
        OpenAICompatModel(url, MODEL)


def test_credentials_in_a_bad_url_are_not_quoted():
    from matrix_align.errors import MatrixAlignError

    with pytest.raises(MatrixAlignError) as info:
        OpenAICompatModel("http://bob:s3cret@127.0.0.1:99999/v1", MODEL)
    assert "s3cret" not in str(info.value)


def test_non_numeric_token_usage_counts_as_unknown():
    from types import SimpleNamespace

    model = OpenAICompatModel("http://127.0.0.1:1/v1", MODEL)
    message = SimpleNamespace(content="fine")
    details = SimpleNamespace(cached_tokens=float("inf"))
    usage = SimpleNamespace(prompt_tokens="lots", completion_tokens=None,
                            prompt_tokens_details=details)  # fmt: skip
    response = SimpleNamespace(
        choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=usage, model=MODEL
    )
    completion = model._to_completion(response, 0.1, None, model._endpoints[0], 64)
    assert completion.text == "fine"
    assert (completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens) == (
        0, 0, 0,
    )  # fmt: skip


def test_a_reply_longer_than_max_tokens_can_produce_is_refused():
    """A server that ignores the cap must not put a 60 MB reply into every later prompt."""
    from types import SimpleNamespace

    from matrix_align.llm.openai_compat import reply_char_limit

    model = OpenAICompatModel("http://127.0.0.1:1/v1", MODEL)

    def reply(text: str):  # noqa: ANN202
        message = SimpleNamespace(content=text)
        return SimpleNamespace(
            choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=None
        )

    limit = reply_char_limit(64)
    assert model._to_completion(reply("x" * limit), 0.1, None, model._endpoints[0], 64).text
    with pytest.raises(PermanentBackendError, match="more than max_tokens=64 can produce"):
        model._to_completion(reply("x" * (limit + 1)), 0.1, None, model._endpoints[0], 64)
