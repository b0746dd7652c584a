"""The records every run folder shares: the query (``SourceRecord``), a failure
(``ErrorRecord``, a line of ``errors.jsonl``), and the stable ids that make a rerun resume.

- ``SourceRecord``: one query from a source (a built-in benchmark or the user's file), with
  the source's own metadata (label, category...) kept for ``evaluate``; ``audit_answer`` the
  scene audit of a MATRIX answer to it, with its harmful label (generate's and evaluate's).
- ``ErrorRecord``: a work item that failed after the backend's retries (written by the batch
  runner into ``generate`` and ``evaluate`` folders alike).
- ``sample_id``: the id of a record, known before the work is done; ``id_settings`` the
  settings it hashes; ``model_key`` its model part.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from matrix_align.simulation.audit import audit_scene
from matrix_align.simulation.trace import SceneTrace


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


def user_message(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


class SourceRecord(BaseModel):
    """One query to answer.

    ``prompt`` is the query text the simulator sees. ``messages`` is set when the source is a
    multi-turn conversation (HH-RLHF dialogue prefixes, or a chat list in the user's file):
    it becomes the TRL ``prompt`` column, while ``prompt`` carries the same conversation
    rendered as one text (see ``render_conversation``) because a scene needs one query.
    """

    id: str = Field(description="<source>/<row key>: where the query came from")
    source: str
    prompt: str
    messages: list[ChatMessage] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def chat(self) -> list[dict[str, str]]:
        """The conversational TRL prompt for this query."""
        if self.messages:
            return [m.model_dump() for m in self.messages]
        return [user_message(self.prompt)]

    @property
    def harmful(self) -> bool | None:
        """The source's label of the query (``metadata["harmful"]``), None when it has none."""
        value = self.metadata.get("harmful")
        return value if isinstance(value, bool) else None


def audit_answer(trace: SceneTrace, record: SourceRecord) -> list[str]:
    """The scene audit of ``trace``, a MATRIX answer to ``record``, with the query's harmful
    label; the flags are stored on the trace and returned. The scene audited itself without
    the label; with it, the flags about the answer count too."""
    trace.flags = audit_scene(trace, harmful=record.harmful)
    return trace.flags


class ErrorRecord(BaseModel):
    """One line of ``errors.jsonl``: a sample that failed after the backend's retries."""

    id: str
    source: str
    mode: str
    source_id: str = ""
    query: str = ""
    reason: str = Field(description="short category, the key of summary.failures_by_reason")
    detail: str = ""
    at: str = ""


def failure_fields(
    *, id: str, source: str, mode: str, source_id: str, query: str
) -> dict[str, Any]:
    """What an ``ErrorRecord`` says of the item that failed (a batch item's
    ``error_fields``), its query cut to the first 2,000 characters."""
    return {"id": id, "source": source, "mode": mode, "source_id": source_id,
            "query": query[:2000]}  # fmt: skip


def sample_id(*, query: str, source: str, mode: str, config: dict[str, Any], model_key: str) -> str:
    """The stable id of a sample: same query, source, mode, settings and model -> same id.

    This is what makes a re-run resume instead of duplicating: the id is known before the
    sample is generated, so finished ids are skipped and a changed setting never collides
    with an old record. Canonical JSON (sorted keys) so dict order cannot change it.
    """
    payload = json.dumps(
        {"query": query, "source": source, "mode": mode, "config": config, "model": model_key},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def id_settings(settings: dict[str, Any], config: Any = None) -> dict[str, Any]:
    """What a generated answer's id hashes as its settings: the settings plus the hash of
    the scene prompt templates (those ``config``, a ``SimulationConfig``, renders: its
    overrides and paper variants included), because an edited template changes the
    answer. (Judgement ids hash the answer ids, so they follow.)"""
    from matrix_align.provenance import config_templates_sha256

    return {**settings, "prompt_templates": config_templates_sha256(config)}


def render_conversation(messages: list[ChatMessage]) -> str:
    """One query text for a multi-turn conversation, the latest user turn last.

    A scene simulates one query; earlier turns are context the simulated user brings along.
    """
    if len(messages) == 1:
        return messages[0].content
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    earlier = "\n".join(f"{names[m.role]}: {m.content}" for m in messages[:-1])
    return f"Conversation so far:\n{earlier}\n\nThe user's latest message: {messages[-1].content}"


def model_key(backend: str, model: str | None) -> str:
    """The model part of a sample id: the backend and the --model value as given."""
    return f"{backend}:{model or 'default'}"
