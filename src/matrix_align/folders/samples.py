"""The record of a ``generate`` folder: one finished sample, a line of ``samples.jsonl``.

Its ``prompt``/``completion`` are already TRL's conversational prompt-completion columns, so
the stored file is itself a valid SFT dataset; ``initial_response`` is kept so preference
pairs (MATRIX answer vs first answer) can be derived without re-running anything. The export
views of a sample are ``data/records.py``'s.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from matrix_align.folders.records import ChatMessage
from matrix_align.simulation.audit import audit_scene
from matrix_align.simulation.trace import SceneTrace


class SampleRecord(BaseModel):
    """One line of ``samples.jsonl``. Field order is the serialisation order (id first)."""

    id: str
    source: str
    mode: str = Field(description="matrix, direct, substep, or a baseline's system name")
    prompt: list[ChatMessage]
    completion: list[ChatMessage]
    initial_response: str = Field(
        "", description="the model's first answer (the rejected side of a preference pair)"
    )
    trace: str = Field(description="the SceneTrace as JSON (SceneTrace.model_validate_json)")
    flags: list[str] | None = Field(
        None,
        description="the scene audit's flags (simulation.audit) of a matrix sample, with the "
        "query's harmful label; None: not audited (samples written before the audit)",
    )
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="source metadata (label, category...), source_id, and 'generation': "
        "model, usage (calls, tokens) and wall time of this sample",
    )

    @property
    def answer(self) -> str:
        return self.completion[-1].content if self.completion else ""

    def usage(self) -> dict[str, Any]:
        return dict(self.meta.get("generation", {}).get("usage", {}))

    @property
    def harmful(self) -> bool | None:
        """The source's label of the query (``meta["harmful"]``), None when it has none."""
        value = self.meta.get("harmful")
        return value if isinstance(value, bool) else None


def sample_flags(record: SampleRecord) -> list[str]:
    """The audit flags of a sample: the stored ones, or, for a matrix sample written before
    the audit, those of its stored trace. Other modes are not scenes: no flags."""
    if record.flags is not None:
        return list(record.flags)
    if record.mode != "matrix" or not record.trace:
        return []
    return audit_scene(SceneTrace.model_validate_json(record.trace), harmful=record.harmful)
