"""The one contract every model backend implements.

A backend turns chat messages into a Completion. When ``schema`` (a JSON schema dict) is
given, the backend asks the server to constrain decoding to it in whatever dialect the
server speaks, and puts the decoded JSON in ``Completion.parsed`` (None when the text does
not parse). Validation against the caller's pydantic model happens above the backend, in
``simulation.structured``, so every backend gets the same re-ask and fallback behaviour.

Retries, concurrency limits and accounting are wrappers (llm/wrappers.py), not subclasses.
Backends subclass ``ChatModel`` for the default ``check`` and ``aclose``.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel

# Requests in flight per backend by default (registry.default_parallel, and the embedded
# model's own default). The embedded model's slots share 2-16 CPU cores, where more slots
# only split the same compute. A served model is usually a GPU engine (vLLM, SGLang,
# llama.cpp server) that batches whatever is in flight: on a batching server, generate ran
# several times faster with 16 in flight than with 4 (docs/generate.md, Throughput).
DEFAULT_PARALLEL = {"embedded": 4, "openai": 16}


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class Completion(BaseModel):
    text: str
    parsed: Any | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens the server reused from its prefix cache, where it reports them.
    cached_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"
    model: str = ""


@runtime_checkable
class ChatModel(Protocol):
    """An asynchronous chat model. ``name`` identifies it in traces and dataset configs.

    ``complete`` is the one method a backend must write. ``check`` and ``aclose`` are the
    lifecycle: a class that subclasses ``ChatModel`` inherits their defaults (always ready,
    nothing to release) and overrides them when it has something to check or to close, so
    callers call them on any model without asking whether it has them.
    """

    name: str

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion: ...

    async def check(self) -> None:
        """Fail fast, before any work, when the model cannot serve (an unreachable server, a
        missing file): raise ``BackendUnavailable`` naming the problem and its fix."""
        return None

    async def aclose(self) -> None:
        """Release what the model holds (connections, a server process); safe to call
        twice."""
        return None


def parse_json(text: str) -> Any | None:
    """Decode a structured reply; None when it is not JSON. Tolerates a ```json fence."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.removeprefix("json").strip()
    try:
        return json.loads(stripped)
    except (json.JSONDecodeError, ValueError):
        return None


def schema_name(schema: dict[str, Any]) -> str:
    """The name servers require beside a JSON schema (OpenAI's ``json_schema.name``)."""
    title = str(schema.get("title") or "output")
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in title)[:64]


def chat_request(
    messages: list[Message] | list[dict[str, Any]],
    max_tokens: int,
    temperature: float,
    seed: int | None,
) -> dict[str, Any]:
    """The sampling part of an OpenAI-style chat completion request, the same from every
    server backend: sampling shaped by temperature alone, as in the paper (``top_p`` 1;
    llama.cpp's default of 0.95 would silently differ from other servers), and a ``seed``
    only when one is given."""
    request: dict[str, Any] = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": 1.0,
    }
    if seed is not None:
        request["seed"] = seed
    return request
