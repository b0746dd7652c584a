"""The bodies of OpenAI's chat-completions API that the server writes: a completion, the
chunks of a stream, the model list. Standard fields only, plus ``matrix`` (where the
answer came from: the trace id, whether a scene ran, the calls), which OpenAI clients keep
as an extra field (``completion.model_extra["matrix"]`` in the ``openai`` package)."""

from __future__ import annotations

import json
from typing import Any

from matrix_align.serve.record import ServeRecord

OWNER = "matrix-align"


def completion(record: ServeRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "chat.completion",
        "created": record.created,
        "model": record.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": record.answer or ""},
                "logprobs": None,
                "finish_reason": record.finish_reason or "stop",
            }
        ],
        "usage": record.usage(),
        "system_fingerprint": None,
        "matrix": record.summary(),
    }


def chunk(
    record: ServeRecord,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    *,
    usage: bool = False,
    matrix: bool | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``. With ``usage``, the usage chunk OpenAI sends last
    for ``stream_options.include_usage``: no choices, the usage of the whole request.
    ``matrix``: True adds the record's summary, False only the trace id (first chunk)."""
    body: dict[str, Any] = {
        "id": record.id,
        "object": "chat.completion.chunk",
        "created": record.created,
        "model": record.model,
        "system_fingerprint": None,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage:
        body["usage"] = record.usage()
    if matrix is not None:
        body["matrix"] = record.summary(final=matrix)
    return body


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event: ``data: <json>`` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


DONE = sse("[DONE]")
# A comment line: SSE readers (the openai client included) skip it; it keeps idle proxies
# from closing a stream while a scene runs, and lets the server notice a client gone.
KEEPALIVE = ": keep-alive\n\n"


def model_entry(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": OWNER}
