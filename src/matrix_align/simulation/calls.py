"""Model calls made on behalf of a scene: recorded in the trace, seeded deterministically,
and, for structured decisions, validated with one re-ask and then a recorded fallback.

Calls of concurrent tasks (the reactions of one round) are buffered per task and appended
in task order, so a trace lists its calls in the same order on every run.
"""

from __future__ import annotations

import asyncio
import contextvars
import zlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from matrix_align.llm.base import ChatModel, Completion, Message, parse_json
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.schemas import output_token_cap, with_headroom
from matrix_align.simulation.trace import ModelCall, SceneTrace

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

_task_buffer: contextvars.ContextVar[list[ModelCall] | None] = contextvars.ContextVar(
    "matrix_align_call_buffer", default=None
)

REASK = "Your reply was not valid ({error}). Reply again with only the JSON object requested."


class SceneCalls:
    def __init__(self, trace: SceneTrace, config: SimulationConfig):
        self.trace = trace
        self.config = config

    def seed(self, stage: str, round: int | None, actor: str | None, attempt: int) -> int:
        """A per-call seed from the scene seed and the call's place in the scene, so a
        deterministic backend replays the same scene regardless of scheduling."""
        key = f"{self.config.seed}|{self.trace.query}|{stage}|{round}|{actor}|{attempt}"
        return zlib.crc32(key.encode()) & 0x7FFFFFFF

    async def text(
        self,
        model: ChatModel,
        messages: list[Message],
        *,
        stage: str,
        max_tokens: int,
        actor: str | None = None,
        round: int | None = None,
        seed_stage: str | None = None,
    ) -> str:
        """A free-text call. ``seed_stage`` seeds it as another stage would be seeded, so two
        systems that make the same call (MATRIX's first answer and vanilla's answer) get the
        same sample from a deterministic backend."""
        completion = await self._complete(
            model, messages, None, stage, max_tokens, actor, round, 1, seed_stage
        )
        return completion.text.strip()

    async def structured(
        self,
        model: ChatModel,
        messages: list[Message],
        output: type[T],
        schema: dict[str, Any],
        *,
        stage: str,
        fallback: Callable[[], T],
        check: Callable[[T], T] | None = None,
        actor: str | None = None,
        round: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[T, bool]:
        """Ask for a structured decision. Returns (value, from_model); from_model is False
        when both attempts were invalid and ``fallback()`` was used (counted in the totals).

        New tokens are capped at what a valid reply can need (``output_token_cap``), and at
        most ``max_tokens`` (default: the config's cap per call). A reply cut by its cap is
        invalid JSON: it is re-asked, with the cap doubled (up to that ceiling), and
        recorded as cut (``finish_reason`` "length"); never parsed half-written.
        ``temperature``: this call's, instead of the scene's."""
        schema = with_headroom(schema)
        ceiling = max_tokens or self.config.max_tokens
        needed = output_token_cap(schema)
        cap = ceiling if needed is None else min(needed, ceiling)
        attempt_messages = list(messages)
        for attempt in (1, 2):
            completion = await self._complete(
                model, attempt_messages, schema, stage, cap, actor, round, attempt,
                temperature=temperature,
            )  # fmt: skip
            try:
                if completion.finish_reason == "length":
                    raise ValueError(f"cut off at the {cap}-token limit; reply more briefly")
                data = (
                    completion.parsed
                    if completion.parsed is not None
                    else parse_json(completion.text)
                )
                if data is None:
                    raise ValueError("not JSON")
                value = output.model_validate(data)
                if check is not None:
                    value = check(value)
                return value, True
            except (ValidationError, ValueError) as exc:
                error = _short_error(exc)
                self._buffer()[-1].valid = False
                self._buffer()[-1].error = error
                if completion.finish_reason == "length":
                    cap = min(2 * cap, ceiling)
                attempt_messages = [
                    *messages,
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": REASK.format(error=error)},
                ]
        self.trace.totals.fallbacks += 1
        return fallback(), False

    async def gather_in_order(self, tasks: Sequence[Coroutine[Any, Any, R]]) -> list[R]:
        """Run tasks concurrently; record their calls in task order, not completion order."""
        buffers: list[list[ModelCall]] = [[] for _ in tasks]

        def start(task: Coroutine[Any, Any, R], buffer: list[ModelCall]) -> asyncio.Task[R]:
            # Each task runs in a context that routes its calls to its buffer. The coroutine
            # is the task itself (not awaited by a wrapper), so one cancelled before it
            # started is closed, not reported as "never awaited".
            context = contextvars.copy_context()
            context.run(_task_buffer.set, buffer)
            return asyncio.create_task(task, context=context)

        results = await asyncio.gather(*(start(t, b) for t, b in zip(tasks, buffers, strict=True)))
        target = self._buffer()
        for buffer in buffers:
            target.extend(buffer)
        return list(results)

    def _buffer(self) -> list[ModelCall]:
        buffer = _task_buffer.get()
        return self.trace.calls if buffer is None else buffer

    async def _complete(
        self,
        model: ChatModel,
        messages: list[Message],
        schema: dict[str, Any] | None,
        stage: str,
        max_tokens: int,
        actor: str | None,
        round: int | None,
        attempt: int,
        seed_stage: str | None = None,
        temperature: float | None = None,
    ) -> Completion:
        completion = await model.complete(
            messages,
            max_tokens=max_tokens,
            temperature=self.config.temperature if temperature is None else temperature,
            seed=self.seed(seed_stage or stage, round, actor, attempt),
            schema=schema,
        )
        self._buffer().append(
            ModelCall(
                stage=stage,
                actor=actor,
                round=round,
                attempt=attempt,
                model=getattr(model, "name", ""),
                messages=[dict(m) for m in messages],
                output=completion.text,
                parsed=completion.parsed,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                cached_tokens=completion.cached_tokens,
                latency_s=round_s(completion.latency_s),
                finish_reason=completion.finish_reason,
            )
        )
        return completion


def round_s(seconds: float) -> float:
    return float(f"{seconds:.4f}")


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        return f"{where}: {first['msg']}"
    return str(exc)[:200]
