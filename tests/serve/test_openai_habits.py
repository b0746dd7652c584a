"""What OpenAI clients and evaluation harnesses expect of a server, through a real loopback
server and the official ``openai`` client: conversations and system messages answered, a
small ``max_tokens``, ``stop``, tools that will not be called, ``x-request-id``,
``/version`` and ``/metrics``."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from matrix_align import __version__
from matrix_align.folders.records import ChatMessage, render_conversation
from matrix_align.serve.settings import ServeSettings
from tests.serve.conftest import WAIT_S, LoopbackServer, echo_model

QUESTION = "Why is the sky blue?"
ASK = {"model": "matrix-align", "messages": [{"role": "user", "content": QUESTION}]}
ANSWER = f"Answer to [{QUESTION}]"  # what the echo model's final answer says


def test_a_conversation_with_a_system_message_is_answered_as_one_rendered_query(
    echo_server: LoopbackServer,
) -> None:
    dialogue = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": QUESTION},
    ]
    completion = echo_server.client().chat.completions.create(
        model="matrix-align", messages=dialogue
    )
    query = render_conversation([ChatMessage(**m) for m in dialogue])  # type: ignore[arg-type]
    record = echo_server.trace(completion.id)
    assert record["query"] == record["scene"]["query"] == query
    assert completion.choices[0].message.content == f"Answer to [{query}]"


def test_max_tokens_below_16_caps_the_answer(echo_server: LoopbackServer) -> None:
    completion = echo_server.client().chat.completions.create(**ASK, max_tokens=1)
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "Answer"  # the scripted model cuts at whole words


def test_stop_cuts_the_answer_before_the_first_stop_string(echo_server: LoopbackServer) -> None:
    client = echo_server.client()
    completion = client.chat.completions.create(**ASK, stop=["blue", "["])
    assert completion.choices[0].message.content == "Answer to "
    assert completion.choices[0].finish_reason == "stop"
    # The trace keeps the scene's answer whole; the cut is the client's.
    assert echo_server.trace(completion.id)["scene"]["final_response"] == ANSWER
    streamed = client.chat.completions.create(**ASK, stop="sky", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == "Answer to [Why is the "
    assert client.chat.completions.create(**ASK, stop=["nowhere"]).choices[0].message.content == (
        ANSWER
    )


def test_tools_with_tool_choice_none_are_answered_without_a_call(
    echo_server: LoopbackServer,
) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    client = echo_server.client()
    completion = client.chat.completions.create(**ASK, tools=tools, tool_choice="none")
    assert completion.choices[0].message.content == ANSWER
    assert not completion.choices[0].message.tool_calls
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ASK, tools=tools)  # the model could call one
    assert caught.value.body["param"] == "tools"  # type: ignore[index]


def test_every_response_carries_a_request_id(echo_server: LoopbackServer) -> None:
    mine = echo_server.get("/health", headers={"x-request-id": "trace-7/abc"})
    assert mine.headers["x-request-id"] == "trace-7/abc"
    new = echo_server.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new)
    assert echo_server.get("/health").headers["x-request-id"] != new
    # A header that is not short printable text is replaced, never echoed into the log.
    odd = echo_server.get("/health", headers={"x-request-id": "x" * 500})
    assert odd.headers["x-request-id"] != "x" * 500
    raw = echo_server.client().chat.completions.with_raw_response.create(
        **ASK, extra_headers={"x-request-id": "eval-42"}
    )
    assert raw.headers["x-request-id"] == "eval-42"
    assert echo_server.get("/no/such/route").headers["x-request-id"]


def test_version_and_metrics(echo_server: LoopbackServer) -> None:
    assert echo_server.get("/version").json() == {"version": __version__}
    client = echo_server.client()
    completion = client.chat.completions.create(**ASK)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**ASK, n=2)
    response = echo_server.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(
        line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#")
    )
    assert samples["matrix_align_requests_total"] == "2"
    assert samples['matrix_align_request_errors_total{status="400"}'] == "1"
    assert samples["matrix_align_requests_running"] == "0"
    assert samples["matrix_align_requests_queued"] == "0"
    assert completion.usage is not None
    assert int(samples["matrix_align_prompt_tokens_total"]) == completion.usage.prompt_tokens
    assert int(samples["matrix_align_completion_tokens_total"]) == (
        completion.usage.completion_tokens
    )
    assert "# TYPE matrix_align_requests_total counter" in response.text


def test_version_and_metrics_need_no_key_but_answers_do() -> None:
    with LoopbackServer(echo_model(), ServeSettings(api_key="k-1")) as server:
        assert server.get("/version").status_code == 200
        assert server.get("/metrics").status_code == 200
        refused = httpx.post(server.base_url + "/chat/completions", json=ASK, timeout=WAIT_S)
        assert refused.status_code == 401 and refused.headers["x-request-id"]
        metrics = server.get("/metrics").text
        assert 'matrix_align_request_errors_total{status="401"} 1' in metrics


def test_a_bug_is_an_openai_500_with_the_request_id_and_counted(
    echo_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matrix_align.serve import openai_format

    def broken(record: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(openai_format, "completion", broken)
    response = httpx.post(
        echo_server.base_url + "/chat/completions",
        json=ASK,
        headers={"x-request-id": "bug-1"},
        timeout=WAIT_S,
    )
    assert response.status_code == 500 and response.headers["x-request-id"] == "bug-1"
    assert response.json()["error"]["code"] == "internal_error"
    assert 'matrix_align_request_errors_total{status="500"} 1' in echo_server.get("/metrics").text
