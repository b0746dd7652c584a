"""One request answered: a place in the queue, the gate, the scene (or the direct answer),
the record, and every failure turned into an OpenAI-style error.

The answer runs as its own task, which the HTTP side cancels when the client goes away; a
cancelled or timed-out request frees its scene slot at once (the queue ticket is released
on every path) and keeps the part of the scene it recorded, so its calls are still counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from matrix_align.errors import (
    BackendUnavailable,
    BackendUnreachable,
    MatrixAlignError,
    PermanentBackendError,
    TransientBackendError,
)
from matrix_align.llm.base import ChatModel
from matrix_align.redact import redact
from matrix_align.serve.admission import Admission, Ticket
from matrix_align.serve.api_errors import APIError, internal_error
from matrix_align.serve.budget import SceneBudget
from matrix_align.serve.gate import (
    Gate,
    GateDecision,
    KeywordRule,
    first_answer_decision,
    keyword_decision,
)
from matrix_align.serve.record import GateOutcome, ServeRecord
from matrix_align.serve.request import ChatRequest
from matrix_align.serve.traces import TraceStore
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import ModelCall, SceneTrace

log = logging.getLogger(__name__)

# Seconds a client is told to wait before retrying when the backend is unavailable: long
# enough for an upstream server to restart, short enough for a harness's retry loop.
UNAVAILABLE_RETRY_AFTER_S = 5


class Answerer:
    def __init__(
        self,
        model: ChatModel,
        *,
        model_name: str,
        gate: Gate,
        keywords: KeywordRule | None,
        admission: Admission,
        store: TraceStore,
        timeout_s: float | None,
        max_scene_calls: int = 100,
        max_scene_chars: int = 8 * 2**20,
        on_finished: Callable[[ServeRecord], None] | None = None,
    ) -> None:
        if gate == "keyword" and keywords is None:
            raise ValueError("the keyword gate needs a keyword rule")
        self.model = model
        self.model_name = model_name
        self.gate = gate
        self.keywords = keywords
        self.admission = admission
        self.store = store
        self.timeout_s = timeout_s
        self.max_scene_calls = max_scene_calls
        self.max_scene_chars = max_scene_chars
        self.on_finished = on_finished

    def admit(self, request: ChatRequest) -> tuple[ServeRecord, Ticket]:
        """A record and a queue place for ``request``, or a 503 when the queue is full.
        Synchronous, so it happens before any response (even a stream) has started."""
        ticket = self.admission.enter()
        record = ServeRecord(
            model=self.model_name, query=request.query, gate=GateOutcome(mode=self.gate)
        )
        self.store.add(record)
        return record, ticket

    async def run(self, request: ChatRequest, record: ServeRecord, ticket: Ticket) -> None:
        """Answer ``request`` into ``record`` (``answer``, ``finish_reason``, calls, trace);
        raise ``APIError`` when it cannot be answered."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):  # the queue wait counts too
                async with ticket:
                    record.status = "running"
                    model = SceneBudget(
                        self.model, max_calls=self.max_scene_calls, max_chars=self.max_scene_chars
                    )
                    await self._answer(request, record, model)
                    _cut_at_stop(record, request.stop)
            record.status = "completed"
        except TimeoutError:
            record.status = "timed_out"
            record.error = f"not answered within {self.timeout_s:g} s"
            raise APIError(
                504,
                f"The request was not answered within {self.timeout_s:g} s (--response-timeout"
                "); a smaller scene (extra_body matrix roles/steps) finishes sooner.",
                type="server_error",
                code="timeout",
            ) from None
        except asyncio.CancelledError:
            record.status = "cancelled"
            record.error = "the client disconnected before the answer"
            raise
        except Exception as exc:
            error = _api_error(exc)
            record.status = "failed"
            record.error = error.message
            raise error from None
        finally:
            ticket.close()  # a no-op unless the request ended before or while waiting
            record.wall_time_s = round(time.perf_counter() - started, 3)
            self.store.finished(record)
            if self.on_finished is not None:
                self.on_finished(record)

    async def _answer(self, request: ChatRequest, record: ServeRecord, model: ChatModel) -> None:
        config = request.config
        if self.gate == "always":
            _decide(record, GateDecision(True, "every request runs a scene"))
            await self._scene(request.query, config, record, model, initial=None)
        elif self.gate == "first-answer":
            text = await self._direct(request.query, config, record, model)
            if _decide(record, first_answer_decision(text, config)):
                await self._scene(request.query, config, record, model, initial=text)
        else:
            assert self.keywords is not None
            if _decide(record, keyword_decision(self.keywords, request.query)):
                await self._scene(request.query, config, record, model, initial=None)
            else:
                # The direct answer is all the client gets, so its cap applies to it.
                if request.max_tokens is not None:
                    config = config.model_copy(update={"max_tokens": request.max_tokens})
                await self._direct(request.query, config, record, model)

    async def _direct(
        self, query: str, config: SimulationConfig, record: ServeRecord, model: ChatModel
    ) -> str:
        """The model's own answer, made exactly as a scene's first call (same prompt, same
        seed), so the first-answer gate's scene reuses it."""
        from matrix_align.simulation.answer import direct_answer

        text, call = await direct_answer(query, model, config)
        record.gate_calls.append(call)
        record.answer, record.finish_reason = text, _finish_reason(call)
        return text

    async def _scene(
        self,
        query: str,
        config: SimulationConfig,
        record: ServeRecord,
        model: ChatModel,
        initial: str | None,
    ) -> None:
        from matrix_align.simulation.scene import run_scene

        def observe(kind: str, trace: SceneTrace) -> None:
            record.scene = trace  # the live trace: a cut-short scene keeps what it recorded

        trace = await run_scene(query, model, config, initial_response=initial, on_event=observe)
        record.scene = trace
        record.answer = trace.final_response
        # The call whose text is the answer: the final one, or the first answer when the
        # final step kept it unchanged.
        finals = [c for c in trace.calls if c.stage == "final"]
        firsts = [c for c in [*record.gate_calls, *trace.calls] if c.stage == "initial"]
        source = (finals or firsts or [None])[-1]
        record.finish_reason = _finish_reason(source)


def _decide(record: ServeRecord, decision: GateDecision) -> bool:
    record.gate.scene, record.gate.reason = decision.scene, decision.reason
    return decision.scene


def _cut_at_stop(record: ServeRecord, stops: tuple[str, ...]) -> None:
    """The client's ``stop``, as OpenAI's API applies it: the answer ends before the first
    stop string in it (not included), and then finished for "stop". Applied to the answer
    once made, since the scene's other calls must not stop there; the trace keeps it whole."""
    found = [i for i in (record.answer.find(s) for s in stops) if i >= 0] if record.answer else []
    if found:
        record.answer, record.finish_reason = record.answer[: min(found)], "stop"


def _finish_reason(call: ModelCall | None) -> str:
    """OpenAI's finish reasons: "length" when the answer hit its token cap, else "stop"."""
    return "length" if call is not None and call.finish_reason == "length" else "stop"


def _api_error(exc: Exception) -> APIError:
    """What the client is told when a request fails inside the answer (its fault or not)."""
    if isinstance(exc, APIError):
        return exc
    # 503 when the backend gave no answer at all (down, restarting, overloaded: what RFC
    # 9110 calls unavailable, and what an OpenAI client and a load balancer retry elsewhere
    # or later, with Retry-After); 502 when it answered, but with an error or a body that is
    # not a completion (a bad gateway).
    if isinstance(exc, BackendUnavailable | BackendUnreachable):
        message = exc.message if isinstance(exc, BackendUnavailable) else f"{exc}"
        return APIError(
            503,
            redact(f"The model backend is unavailable: {message}"),
            type="server_error",
            code="backend_unavailable",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    if isinstance(exc, MatrixAlignError):  # the query cannot be simulated (too long...)
        return APIError(400, redact(exc.message), code="invalid_query")
    if isinstance(exc, TransientBackendError):
        return APIError(
            502,
            redact(f"The model backend kept failing after retries: {exc}"),
            type="server_error",
            code="backend_error",
        )
    if isinstance(exc, PermanentBackendError):
        return APIError(
            502,
            redact(f"The model backend rejected a request: {exc}"),
            type="server_error",
            code="backend_rejected",
        )
    log.exception("internal error while answering a request", exc_info=exc)
    return internal_error()
