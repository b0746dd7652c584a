"""A real uvicorn server on a loopback port, in a thread, around test models.

The command itself runs as a subprocess in test_cli_server.py; the tests here need models
the command cannot be given (one that blocks until released, one that echoes the query),
so they build the same app with ``create_app`` and serve it as the command does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette", reason="needs the serve extra")
pytest.importorskip("uvicorn", reason="needs the serve extra")

from matrix_align.llm.base import Completion, Message  # noqa: E402
from matrix_align.llm.scripted import ScriptedModel, ScriptedRequest, demo_rules  # noqa: E402
from matrix_align.llm.spec import BackendSpec  # noqa: E402
from matrix_align.serve.settings import ServeSettings  # noqa: E402
from matrix_align.simulation.config import SimulationConfig  # noqa: E402

WAIT_S = 60  # an upper bound for things that happen in well under a second, never asserted


def echo_model(**kwargs: Any) -> ScriptedModel:
    """The demo scene, with every free-text answer (first and final) quoting the question,
    so a test can tell whose answer it got."""

    def answer(request: ScriptedRequest) -> str:
        return f"Answer to [{request.messages[-1]['content']}]"

    return ScriptedModel([*demo_rules()[:-1], ("*", answer)], **kwargs)


class BlockingModel:
    """Wraps a model; a structured call (so: after the first answer, mid-scene; with
    ``first_call``, any call) whose prompt contains ``BLOCK`` waits until ``release`` is set.
    ``entered`` tells the test the scene is under way; ``cancelled`` that a waiting call was
    cancelled (the scene was stopped)."""

    def __init__(self, inner: Any, *, first_call: bool = False) -> None:
        self.inner = inner
        self.first_call = first_call
        self.name = "blocking"
        self.entered = threading.Event()
        self.release = threading.Event()
        self.cancelled = threading.Event()

    async def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
        mid_scene = self.first_call or kwargs.get("schema") is not None
        blocks = mid_scene and any("BLOCK" in m["content"] for m in messages)
        if blocks and not self.release.is_set():
            self.entered.set()
            try:
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return await self.inner.complete(messages, **kwargs)


class LoopbackServer:
    """``create_app`` served by uvicorn on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, model: Any, settings: ServeSettings | None = None, **config: Any):
        from matrix_align.serve.app import create_app

        self.settings = settings or ServeSettings()
        self.app = create_app(
            BackendSpec("scripted", script=model).build(),  # wrapped as the command wraps a backend
            SimulationConfig(**{"n_roles": 2, "n_steps": 2, **config}),
            self.settings,
        )

    def __enter__(self) -> LoopbackServer:
        from matrix_align.serve.server import bind, bound_url, make_server

        sock = bind("127.0.0.1", 0)
        self.base_url = bound_url(sock)
        self.server = make_server(self.app, self.settings)  # as the command serves it
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_S)

    @property
    def admission(self) -> Any:
        return self.app.state.admission

    def client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(
            base_url=self.base_url,
            api_key="unused",
            **{"max_retries": 0, "timeout": WAIT_S, **kwargs},
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base_url.removesuffix("/v1") + path, timeout=WAIT_S, **kwargs)

    def trace(self, trace_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/matrix/traces/{trace_id}")
        assert response.status_code == 200, response.text
        return response.json()


def wait_for(condition: Any, what: str) -> None:
    """Wait until ``condition()`` holds; fail (never pass) when it does not within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def echo_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(echo_model()) as server:
        yield server
