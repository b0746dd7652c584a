"""What the server keeps of one request, served at ``GET /v1/matrix/traces/{id}``: how the
gate decided, the calls made outside the scene, the scene's trace, the answer and its usage.

The id is the completion's own id (``chatcmpl-...``), so a client holding a response (or
its ``x-matrix-trace-id`` header) can fetch what produced it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from matrix_align.simulation.trace import ModelCall, SceneTrace, Usage

Status = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class GateOutcome(BaseModel):
    mode: str
    scene: bool | None = None  # None until decided
    reason: str = ""


class ServeRecord(BaseModel):
    id: str = Field(default_factory=new_id)
    object: Literal["matrix.trace"] = "matrix.trace"
    created: int = Field(default_factory=lambda: int(time.time()))
    status: Status = "queued"
    model: str
    query: str
    gate: GateOutcome
    answer: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    wall_time_s: float | None = None
    # Calls made before or instead of a scene: the first answer the first-answer gate reads,
    # or the direct answer of a request the gate let through. The scene's own calls are in
    # ``scene.calls``.
    gate_calls: list[ModelCall] = Field(default_factory=list)
    # The scene's trace; while a scene runs (and after it was cancelled or timed out) the
    # part recorded so far.
    scene: SceneTrace | None = None

    def calls(self) -> list[ModelCall]:
        return [*self.gate_calls, *(self.scene.calls if self.scene else [])]

    def usage(self) -> dict[str, Any]:
        """OpenAI's usage object counting every call made for this request: the gate's and
        every call of the scene (the same sums as the trace's totals, read from the calls so
        that a scene cut short is counted too)."""
        used = Usage.of_calls(self.calls())
        return {
            "prompt_tokens": used.prompt_tokens,
            "completion_tokens": used.completion_tokens,
            "total_tokens": used.tokens,
            "prompt_tokens_details": {"cached_tokens": used.cached_tokens},
        }

    def summary(self, *, final: bool = True) -> dict[str, Any]:
        """The ``matrix`` field of a completion: where the answer came from. Not ``final``
        (a stream's first chunk, sent before the answer exists): only where to find it."""
        where = {"trace_id": self.id, "trace_url": f"/v1/matrix/traces/{self.id}"}
        if not final:
            return where
        return {
            **where,
            "gate": self.gate.mode,
            "scene": bool(self.gate.scene),
            "reason": self.gate.reason,
            "calls": len(self.calls()),
        }
