"""The dataset record schema, defined once.

Three kinds of record travel through ``generate``:

- ``SourceRecord``: one query from a source (a built-in benchmark or the user's file), with
  the source's own metadata (label, category...) kept for ``evaluate``.
- ``SampleRecord``: one finished sample, the line written to ``OUTPUT/samples.jsonl``. Its
  ``prompt``/``completion`` are already TRL's conversational prompt-completion columns, so
  the stored file is itself a valid SFT dataset; ``initial_response`` is kept so preference
  pairs (MATRIX answer vs first answer) can be derived without re-running anything.
- ``ErrorRecord``: a sample that failed after the backend's retries (``errors.jsonl``).

The export views (``prompt_completion``, ``messages``, ``preference``) are computed from a
``SampleRecord`` by the functions at the bottom, so the TRL column names live in one place.
In exports ``trace`` and ``meta`` are JSON *strings*: a trace is deeply nested and metadata
differs from source to source, and a string column round-trips through JSONL, Parquet and
``datasets`` without any schema inference surprises. Trainers ignore both columns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from matrix_align.simulation.audit import COMPLIES_WITH_HARMFUL, WORSE_THAN_FIRST, audit_scene
from matrix_align.simulation.trace import SceneTrace

GenerationMode = Literal["matrix", "direct"]
# The built-in modes a source can be answered in ("substep" records are derived from matrix
# traces). Every baseline of ``systems`` is a mode too (data.generate.ANSWERERS), so a
# record's mode is a plain string.
GENERATION_MODES: tuple[str, ...] = ("matrix", "direct")

# TRL's documented column names, per export format, plus the provenance columns trainers
# ignore. The order is the column order in every export file.
EXTRA_COLUMNS: tuple[str, ...] = ("id", "source", "mode", "trace", "meta")
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "preference": ("prompt", "chosen", "rejected"),
}
EXPORT_FORMATS: tuple[str, ...] = tuple(FORMAT_COLUMNS)
# A matrix sample with one of these flags never becomes a preference pair (chosen = final
# answer, rejected = first answer), even when the export keeps flagged rows: its final answer
# helps with a harmful request, or is less safe or helpful than the first one, so the pair
# would reward the wrong answer.
NO_PAIR_FLAGS: tuple[str, ...] = (WORSE_THAN_FIRST, COMPLIES_WITH_HARMFUL)


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


def id_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What a generated answer's id hashes as its settings: the settings plus the hash of
    the scene prompt templates, because an edited template changes the answer. (Judgement
    ids hash the answer ids, so they follow.)"""
    from matrix_align.provenance import prompt_templates_sha256

    return {**settings, "prompt_templates": prompt_templates_sha256()}


def render_conversation(messages: list[ChatMessage]) -> str:
    """One query text for a multi-turn conversation, the latest user turn last.

    A scene simulates one query; earlier turns are context the simulated user brings along.
    """
    if len(messages) == 1:
        return messages[0].content
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    earlier = "\n".join(f"{names[m.role]}: {m.content}" for m in messages[:-1])
    return f"Conversation so far:\n{earlier}\n\nThe user's latest message: {messages[-1].content}"


# --- export views ---------------------------------------------------------------------


def _extras(record: SampleRecord, *, mode: str | None = None, trace: str | None = None) -> dict:
    return {
        "id": record.id,
        "source": record.source,
        "mode": mode or record.mode,
        "trace": record.trace if trace is None else trace,
        "meta": json.dumps(record.meta, ensure_ascii=False, sort_keys=True, default=str),
    }


def _messages(items: list[ChatMessage]) -> list[dict[str, str]]:
    return [m.model_dump() for m in items]


def prompt_completion_row(record: SampleRecord, *, with_trace: bool = True) -> dict[str, Any]:
    row = {"prompt": _messages(record.prompt), "completion": _messages(record.completion)}
    return row | _extras(record, trace=None if with_trace else "")


def messages_row(record: SampleRecord, *, with_trace: bool = True) -> dict[str, Any]:
    row = {"messages": _messages(record.prompt) + _messages(record.completion)}
    return row | _extras(record, trace=None if with_trace else "")


def sample_flags(record: SampleRecord) -> list[str]:
    """The audit flags of a sample: the stored ones, or, for a matrix sample written before
    the audit, those of its stored trace. Other modes are not scenes: no flags."""
    if record.flags is not None:
        return list(record.flags)
    if record.mode != "matrix" or not record.trace:
        return []
    return audit_scene(SceneTrace.model_validate_json(record.trace), harmful=record.harmful)


def _has_pair(record: SampleRecord) -> bool:
    rejected = record.initial_response.strip()
    return (
        record.mode not in ("direct", "substep")
        and bool(rejected)
        and rejected != record.answer.strip()
    )


def pair_withheld(record: SampleRecord) -> bool:
    """The sample has two different answers, but as a pair they would teach the wrong
    direction (a ``NO_PAIR_FLAGS`` flag): no preference row, whatever the export drops."""
    return _has_pair(record) and bool(set(sample_flags(record)) & set(NO_PAIR_FLAGS))


def preference_row(record: SampleRecord, *, with_trace: bool = True) -> dict[str, Any] | None:
    """chosen = the MATRIX (or baseline) answer, rejected = the model's first answer; None when
    there is no pair (direct samples, or a final answer equal to the first one) and when the
    pair is withheld (``pair_withheld``)."""
    if not _has_pair(record) or pair_withheld(record):
        return None
    row = {
        "prompt": _messages(record.prompt),
        "chosen": _messages(record.completion),
        "rejected": [assistant_message(record.initial_response)],
    }
    return row | _extras(record, trace=None if with_trace else "")
