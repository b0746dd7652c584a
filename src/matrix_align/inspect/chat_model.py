"""The project's ``ChatModel`` on top of an inspect ``Model``.

Why an adapter rather than a backend: inside an evaluation, inspect owns the model (the
provider the user named with ``--model``, its retries, connection limits, rate limits and
usage accounting, and the transcript that ``inspect view`` shows). Sending every call of a
scene through ``Model.generate`` keeps all of that, so MATRIX runs on any inspect provider
and each scene call appears in the sample's transcript.

Structured decisions: the scene passes a JSON schema; it is sent as inspect's
``ResponseSchema`` so providers that support structured output constrain decoding to it.
Providers that ignore it still work, because the scene validates every structured reply,
re-asks once and then records a fallback (``simulation/calls.py``). ``structured=False``
leaves the schema out for providers that reject it. inspect's ``JSONSchema`` has no place for
``minItems``, ``maxItems`` or ``uniqueItems``, so those counts are enforced by that validation
rather than by decoding.
"""

from __future__ import annotations

import time
from typing import Any

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    ResponseSchema,
)
from inspect_ai.util import JSONSchema

from matrix_align.llm.base import ChatModel, Completion, Message, parse_json, schema_name

# inspect's stop reasons in the OpenAI spelling the rest of the project reads ("length" marks
# a reply cut by the token cap: the accounting wrapper and the scene page look for it).
_FINISH = {"max_tokens": "length", "model_length": "length"}


_KINDS = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}


def to_inspect_messages(messages: list[Message] | list[dict[str, str]]) -> list[ChatMessage]:
    return [_KINDS[m["role"]](content=m["content"]) for m in messages]


def response_schema(schema: dict[str, Any]) -> ResponseSchema:
    return ResponseSchema(name=schema_name(schema), json_schema=JSONSchema.model_validate(schema))


class InspectChatModel(ChatModel):
    """A ``ChatModel`` whose calls go through ``model.generate``."""

    def __init__(self, model: Model, *, structured: bool = True) -> None:
        self.model = model
        self.structured = structured
        self.name = f"inspect:{model}"

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        config = GenerateConfig(
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            response_schema=response_schema(schema) if schema and self.structured else None,
        )
        started = time.monotonic()
        output = await self.model.generate(to_inspect_messages(messages), config=config)
        return to_completion(output, schema, time.monotonic() - started, str(self.model))


def to_completion(
    output: ModelOutput, schema: dict[str, Any] | None, elapsed_s: float, model: str
) -> Completion:
    text = output.completion
    usage = output.usage
    stop = output.stop_reason
    return Completion(
        text=text,
        parsed=parse_json(text) if schema else None,
        prompt_tokens=usage.input_tokens if usage else 0,
        completion_tokens=usage.output_tokens if usage else 0,
        cached_tokens=(usage.input_tokens_cache_read or 0) if usage else 0,
        # The provider's own figure when it gives one; else the wall time of the call
        # (which includes waiting for a connection slot).
        latency_s=output.time if output.time is not None else round(elapsed_s, 3),
        finish_reason=_FINISH.get(stop, stop),
        model=output.model or model,
    )
