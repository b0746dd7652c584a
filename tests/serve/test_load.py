"""A bounded load on loopback: 40 requests at once, 4 scenes at a time. None is lost, none
gets another's answer, and no more than 4 scenes ever run together."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from matrix_align.serve.settings import ServeSettings
from tests.serve.conftest import LoopbackServer, echo_model

REQUESTS = 40
CONCURRENCY = 4


def test_forty_concurrent_requests_each_get_their_own_answer() -> None:
    settings = ServeSettings(max_concurrency=CONCURRENCY, max_queue=REQUESTS)
    with LoopbackServer(echo_model(), settings) as server:
        client = server.client()
        queries = [f"Question {i}: how should I store {i} kg of flour?" for i in range(REQUESTS)]

        def ask(i: int) -> tuple[int, object]:
            stream = i % 2 == 1  # half streamed, half plain, interleaved
            response = client.chat.completions.with_raw_response.create(
                model="matrix-align",
                messages=[{"role": "user", "content": queries[i]}],
                stream=stream,
                extra_body={"matrix": {"roles": 1 + i % 2, "steps": 1 + i % 3}},
            )
            parsed = response.parse()
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
            else:
                text = parsed.choices[0].message.content
            return i, (response.headers["x-matrix-trace-id"], text)

        with ThreadPoolExecutor(REQUESTS) as pool:
            results = dict(pool.map(ask, range(REQUESTS)))

        assert sorted(results) == list(range(REQUESTS))
        trace_ids = {trace_id for trace_id, _ in results.values()}
        assert len(trace_ids) == REQUESTS
        for i, (trace_id, text) in results.items():
            assert text == f"Answer to [{queries[i]}]"  # its own query, nobody else's
            record = server.trace(trace_id)
            assert record["status"] == "completed"
            assert record["query"] == queries[i] == record["scene"]["query"]
            assert len(record["scene"]["plan"]) == 1 + i % 3  # its own settings too
        assert 1 <= server.admission.peak <= CONCURRENCY
        assert server.get("/health").json() == {"status": "ok", "running": 0, "queued": 0}
