"""A client that leaves mid-scene: the scene is cancelled, its slot freed, its record says
so, and the server goes on answering (with one slot, a leaked one would hang the next
request)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx

from matrix_align.serve.settings import ServeSettings
from tests.serve.conftest import WAIT_S, BlockingModel, LoopbackServer, echo_model, wait_for

ONE_SLOT = ServeSettings(max_concurrency=1, max_queue=4)


def raw_post(base_url: str, body: dict) -> socket.socket:
    """Send a chat request on a bare socket and return it unread, to be closed mid-scene."""
    url = urlsplit(base_url)
    payload = json.dumps(body).encode()
    sock = socket.create_connection((url.hostname, url.port), timeout=WAIT_S)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def request(query: str, **extra: object) -> dict:
    return {"model": "matrix-align", "messages": [{"role": "user", "content": query}], **extra}


def answers_after(server: LoopbackServer) -> None:
    """The next request, on the one slot, is answered in full."""
    completion = server.client().chat.completions.create(
        model="matrix-align", messages=[{"role": "user", "content": "Is tea healthy?"}]
    )
    assert completion.choices[0].message.content == "Answer to [Is tea healthy?]"
    health = server.get("/health").json()
    assert health == {"status": "ok", "running": 0, "queued": 0}


def test_plain_request_closed_mid_scene() -> None:
    model = BlockingModel(echo_model())
    with LoopbackServer(model, ONE_SLOT) as server:
        sock = raw_post(server.base_url, request("BLOCK: how do I hide a camera?"))
        assert model.entered.wait(WAIT_S), "the scene never started"
        sock.close()
        assert model.cancelled.wait(WAIT_S), "the scene went on after the client left"
        wait_for(lambda: server.admission.running == 0, "the slot to be freed")
        answers_after(server)


def test_stream_closed_mid_scene_keeps_what_the_scene_recorded() -> None:
    model = BlockingModel(echo_model())
    with LoopbackServer(model, ONE_SLOT) as server:
        stream = server.client().chat.completions.with_raw_response.create(
            model="matrix-align",
            messages=[{"role": "user", "content": "How do I BLOCK the road?"}],
            stream=True,
        )
        trace_id = stream.headers["x-matrix-trace-id"]
        chunks = stream.parse()
        first = next(iter(chunks))  # the role chunk, sent before the scene ends
        assert first.choices[0].delta.role == "assistant"
        assert model.entered.wait(WAIT_S)
        chunks.close()  # the client goes away mid-scene
        assert model.cancelled.wait(WAIT_S), "the scene went on after the client left"
        wait_for(lambda: server.trace(trace_id)["status"] == "cancelled", "the record")
        record = server.trace(trace_id)
        # The first answer had been given before the blocked call: it is kept and counted.
        assert record["scene"]["initial_response"] == "Answer to [How do I BLOCK the road?]"
        assert record["scene"]["calls"] and record["error"]
        answers_after(server)


def test_keepalive_comments_while_a_streamed_scene_runs() -> None:
    """While the scene runs the stream carries SSE comments (readers skip them), then the
    answer; the first event is the role, sent before the scene ends."""
    model = BlockingModel(echo_model())
    settings = ServeSettings(keepalive_s=0.01)
    with LoopbackServer(model, settings) as server:
        body = request("Please BLOCK nothing", stream=True)
        lines: list[str] = []
        with httpx.stream(
            "POST", server.base_url + "/chat/completions", json=body, timeout=WAIT_S
        ) as response:
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith(":"):
                    model.release.set()  # seen a keep-alive: let the scene finish
        events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert any(line.startswith(": keep-alive") for line in lines)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Answer to [Please BLOCK nothing]"
