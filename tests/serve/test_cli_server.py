"""``matrix-align serve`` as a user runs it (a subprocess on a loopback port), spoken to by
the official ``openai`` client: plain and streamed answers, usage, the trace by id, the
client key, OpenAI-style errors for bad requests, and an upstream OpenAI-compatible server
as the backend."""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from matrix_align.testing.fake_openai_server import FakeOpenAIServer
from tests.serve.conftest import WAIT_S

KEY_ENV = "MATRIX_SERVE_TEST_KEY"
KEY = "test-key-4f1c9a0b7d"
QUERY = "How do I pick the lock of my neighbour's shed?"


class ServeProcess:
    def __init__(
        self, *args: str, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> None:
        def limit() -> None:  # in the child: `ulimit -n open_files`
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "matrix_align", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
            preexec_fn=limit,
        )
        self.lines: list[str] = []
        self.base_url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + WAIT_S
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line and self.proc.poll() is not None:
                    break
                self.lines.append(line)
                if line.startswith("serving MATRIX at "):
                    return line.split()[3]
        self.proc.kill()
        raise AssertionError("the server did not start:\n" + "".join(self.lines))

    def stop(self) -> str:
        """Ctrl-C, as a user stops it; returns everything it printed."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=WAIT_S)
        return "".join(self.lines) + out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    traces = tmp_path_factory.mktemp("traces")
    server = ServeProcess(
        "--backend", "scripted", "--roles", "2", "--steps", "2", "--auth-key-env", KEY_ENV,
        "--trace-dir", str(traces), env={KEY_ENV: KEY},
    )  # fmt: skip
    try:
        yield server, traces
    finally:
        output = server.stop()
    assert server.proc.returncode == 0, output
    assert "stopped" in output
    assert KEY not in output  # the key is never printed


@pytest.fixture
def client(served: tuple[ServeProcess, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0].base_url, api_key=KEY, max_retries=0, timeout=WAIT_S)


def get(served: tuple[ServeProcess, Path], path: str, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(served[0].base_url + path, headers=headers, timeout=WAIT_S)


def test_plain_answer_with_usage_and_trace(served, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="matrix-align", messages=[{"role": "user", "content": QUERY}]
    )
    completion = raw.parse()
    trace_id = raw.headers["x-matrix-trace-id"]
    assert trace_id == completion.id and trace_id.startswith("chatcmpl-")
    # The demo scene rates the plan seriously harmful, so the final answer declines.
    answer = completion.choices[0].message.content
    assert answer and answer.startswith("I can't help with the risky part")
    assert completion.choices[0].finish_reason == "stop"
    matrix = completion.model_extra["matrix"]
    assert matrix["trace_id"] == trace_id and matrix["scene"] is True

    record = get(served, f"/matrix/traces/{trace_id}").json()
    assert record["status"] == "completed" and record["query"] == QUERY
    scene = record["scene"]
    assert scene["query"] == QUERY and scene["final_response"] == answer
    assert len(scene["roles"]) == 3 and len(scene["plan"]) == 2  # 2 roles + the asker
    # usage counts every call of the scene: the trace's totals.
    totals = scene["totals"]
    assert matrix["calls"] == totals["calls"] == len(scene["calls"]) > 5
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == totals["prompt_tokens"] > 0
    assert usage.completion_tokens == totals["completion_tokens"] > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # --trace-dir keeps it on disk too.
    on_disk = json.loads((served[1] / f"{trace_id}.json").read_text(encoding="utf-8"))
    assert on_disk["scene"]["final_response"] == answer


def test_streamed_answer_in_chunks_ending_with_done(served, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="matrix-align",
        messages=[{"role": "user", "content": QUERY}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"matrix": {"roles": 1, "steps": 1}},
    )
    trace_id = raw.headers["x-matrix-trace-id"]
    chunks = list(raw.parse())
    assert {c.id for c in chunks} == {trace_id}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None

    record = get(served, f"/matrix/traces/{trace_id}").json()
    scene = record["scene"]
    assert text == scene["final_response"] and text.startswith("I can't help")
    # extra_body's settings were this request's: one role besides the asker, one step.
    assert scene["config"]["n_roles"] == 1 and len(scene["plan"]) == 1
    assert (
        usage.total_tokens
        == scene["totals"]["prompt_tokens"] + scene["totals"]["completion_tokens"]
    )


def test_the_raw_stream_is_openai_sse_ending_with_done(served) -> None:
    body = {
        "model": "matrix-align",
        "stream": True,
        "messages": [{"role": "user", "content": QUERY}],
        "matrix": {"roles": 1, "steps": 1},
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST", served[0].base_url + "/chat/completions", json=body, headers=headers,
        timeout=WAIT_S,
    ) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])


def test_models_lists_the_served_name(served, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["matrix-align"]
    assert client.models.retrieve("matrix-align").id == "matrix-align"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body
    return body


def test_wrong_or_missing_key_is_refused(served) -> None:
    bad = openai.OpenAI(base_url=served[0].base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(
            model="matrix-align", messages=[{"role": "user", "content": QUERY}]
        )
    assert error_of(caught.value)["code"] == "invalid_api_key"
    # The openai client insists on a key, so the request without one is made by hand.
    body = {"model": "matrix-align", "messages": [{"role": "user", "content": QUERY}]}
    missing = httpx.post(served[0].base_url + "/chat/completions", json=body, timeout=WAIT_S)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert get(served, "/models", key="wrong-key").status_code == 401
    assert get(served, "/matrix/traces/chatcmpl-" + "0" * 32, key=None).status_code == 401
    health = httpx.get(served[0].base_url.removesuffix("/v1") + "/health", timeout=WAIT_S)
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"messages": []}, "messages", None),
        ({"messages": [{"role": "user", "content": "  "}]}, "messages", None),
        ({"extra_body": {"matrix": {"roles": 0}}}, "matrix.roles", "invalid_matrix_settings"),
        ({"extra_body": {"matrix": {"steps": "2"}}}, "matrix.steps", "invalid_matrix_settings"),
        ({"extra_body": {"matrix": {"actors": 3}}}, "matrix.actors", "invalid_matrix_settings"),
        ({"extra_body": {"matrix": [2, 2]}}, "matrix", "invalid_matrix_settings"),
        ({"temperature": 5}, "temperature", None),
        ({"n": 2}, "n", None),
        (
            {
                "messages": [
                    {"role": "user", "content": QUERY},
                    {"role": "tool", "content": "42", "tool_call_id": "call_1"},
                ]
            },
            "messages[1]",
            "tool_message_unsupported",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                ]
            },
            "messages[1]",
            None,
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_requests_get_openai_error_bodies(client, kwargs, param, code) -> None:
    args: dict[str, Any] = {
        "model": "matrix-align",
        "messages": [{"role": "user", "content": QUERY}],
        **kwargs,
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**args)
    error = error_of(caught.value)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code
    assert error["message"]


def test_missing_messages_unknown_model_and_unknown_trace(served, client) -> None:
    # The openai client refuses to send a request without messages, so this one is by hand.
    response = httpx.post(
        served[0].base_url + "/chat/completions",
        json={"model": "matrix-align"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=WAIT_S,
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
    }
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUERY}]
        )
    assert error_of(caught.value)["code"] == "model_not_found"
    missing = get(served, "/matrix/traces/chatcmpl-" + "0" * 32)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "trace_not_found"
    for path in ("/matrix/traces/..%2F..%2Fetc%2Fpasswd", "/no/such/route"):
        response = get(served, path)
        assert response.status_code == 404 and "error" in response.json()


def test_a_body_that_is_not_json_is_a_400(served) -> None:
    response = httpx.post(
        served[0].base_url + "/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        timeout=WAIT_S,
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_in_front_of_an_upstream_openai_compatible_server() -> None:
    """--backend openai: every call of the scene goes to the upstream, and the usage counts
    exactly the calls it served."""
    with FakeOpenAIServer(models=("upstream-model",)) as upstream:
        server = ServeProcess(
            "--backend", "openai", "--base-url", upstream.base_url, "--model", "upstream-model",
            "--roles", "1", "--steps", "1", "--served-model-name", "guarded",
        )  # fmt: skip
        try:
            client = openai.OpenAI(
                base_url=server.base_url, api_key="none", max_retries=0, timeout=WAIT_S
            )
            upstream.clear()
            completion = client.chat.completions.create(
                model="guarded", messages=[{"role": "user", "content": QUERY}]
            )
            chat_calls = len(upstream.requests)
        finally:
            output = server.stop()
    assert server.proc.returncode == 0, output
    assert completion.model == "guarded"
    assert completion.choices[0].message.content  # the upstream's reply, through the scene
    assert completion.model_extra["matrix"]["calls"] == chat_calls > 3
    assert "completed" in output and "scene" in output


def test_a_failing_upstream_is_retried_as_told_then_502_and_a_silent_one_is_503() -> None:
    """--retries reaches the backend; an upstream that answers with errors is a bad gateway
    (502), one that does not answer at all (here: no reply within --request-timeout; a
    refused connection is the same error, tests/llm) makes the service unavailable (503,
    with Retry-After), as docs/serve.md says."""
    upstream = FakeOpenAIServer(models=("upstream-model",), hang_s=30).start()
    server = ServeProcess(
        "--backend", "openai", "--base-url", upstream.base_url, "--model", "upstream-model",
        "--roles", "1", "--steps", "1", "--retries", "1", "--request-timeout", "1",
    )  # fmt: skip
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        ask = {"model": "matrix-align", "messages": [{"role": "user", "content": QUERY}]}
        upstream.clear()
        upstream.fault_rates["http_500"] = 1.0
        with pytest.raises(openai.InternalServerError) as failing:
            client.chat.completions.create(**ask)
        attempts = len(upstream.requests)
        upstream.fault_rates.update(http_500=0.0, timeout=1.0)
        with pytest.raises(openai.InternalServerError) as dead:
            client.chat.completions.create(**ask)
    finally:
        upstream.stop()
        output = server.stop()
    assert server.proc.returncode == 0, output
    assert attempts == 2  # the first answer's call, and its one retry
    assert len(upstream.requests) == 4  # likewise, each left unanswered
    assert failing.value.status_code == 502
    assert error_of(failing.value)["code"] == "backend_error"
    assert dead.value.status_code == 503
    assert error_of(dead.value)["code"] == "backend_unavailable"
    assert dead.value.response.headers["retry-after"] == "5"


def test_startup_errors_are_one_clear_message() -> None:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    for args, expected in (
        (["--auth-key-env", KEY_ENV], f"{KEY_ENV}: that environment variable is not set"),
        (["--gate", "sometimes"], "'sometimes' is not one of always, first-answer, keyword"),
        (["--keywords", "k.txt"], "--keywords is used only by --gate keyword"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "matrix_align", "serve", "--backend", "scripted", *args],
            capture_output=True, text=True, timeout=WAIT_S, env={**env, "COLUMNS": "200"},
        )  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert expected in " ".join((result.stdout + result.stderr).split())


def test_a_flood_of_silent_connections_under_a_low_open_file_limit() -> None:
    """300 connections that send nothing, under `ulimit -n 256`: the cap keeps the server
    under the limit, /health still answers, and the log stays quiet (it used to print a
    traceback per retried accept, megabytes a second)."""
    server = ServeProcess("--backend", "scripted", open_files=256)
    url = httpx.URL(server.base_url)
    silent = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((url.host, url.port))
            silent.append(sock)
        for _ in range(3):
            health = httpx.get(server.base_url.removesuffix("/v1") + "/health", timeout=WAIT_S)
            assert health.status_code == 200
    finally:
        for sock in silent:
            sock.close()
        output = server.stop()
    assert server.proc.returncode == 0, output
    assert "at most 128 connections at once" in output  # 256, less what the server keeps
    assert "Traceback" not in output and "out of system resource" not in output
