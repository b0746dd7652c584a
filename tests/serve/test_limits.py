"""The bounded queue (503 at once when full) and the response timeout (504, the scene
cancelled); the server answers normally afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from matrix_align.serve.settings import ServeSettings
from tests.serve.conftest import BlockingModel, LoopbackServer, echo_model, wait_for


def ask(server: LoopbackServer, query: str) -> str | None:
    completion = server.client().chat.completions.create(
        model="matrix-align", messages=[{"role": "user", "content": query}]
    )
    return completion.choices[0].message.content


def test_a_full_queue_is_refused_at_once_with_503() -> None:
    model = BlockingModel(echo_model())
    with LoopbackServer(model, ServeSettings(max_concurrency=1, max_queue=1)) as server:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(ask, server, "BLOCK first")
            assert model.entered.wait(60)
            queued = pool.submit(ask, server, "BLOCK second")
            wait_for(lambda: server.admission.waiting == 1, "the second request to queue")
            for stream in (False, True):  # a stream is refused before it starts, too
                with pytest.raises(openai.InternalServerError) as caught:
                    server.client().chat.completions.create(
                        model="matrix-align",
                        messages=[{"role": "user", "content": "third"}],
                        stream=stream,
                    )
                assert caught.value.status_code == 503
                assert caught.value.response.headers["retry-after"] == "1"
                assert caught.value.body["code"] == "queue_full"
            model.release.set()
            assert running.result() == "Answer to [BLOCK first]"
            assert queued.result() == "Answer to [BLOCK second]"
        assert ask(server, "after") == "Answer to [after]"


def test_a_request_over_the_response_timeout_gets_504_and_its_scene_stops() -> None:
    model = BlockingModel(echo_model(), first_call=True)  # blocks however slow the machine
    settings = ServeSettings(response_timeout_s=0.5, max_concurrency=1)
    with LoopbackServer(model, settings) as server:
        with pytest.raises(openai.InternalServerError) as caught:
            server.client().chat.completions.with_raw_response.create(
                model="matrix-align", messages=[{"role": "user", "content": "BLOCK forever"}]
            )
        assert caught.value.status_code == 504
        assert caught.value.body["code"] == "timeout"
        trace_id = caught.value.response.headers["x-matrix-trace-id"]
        assert server.trace(trace_id)["status"] == "timed_out"
        assert model.cancelled.is_set() or not model.entered.is_set()
        assert ask(server, "after") == "Answer to [after]"  # the one slot was freed
