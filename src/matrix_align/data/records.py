"""The dataset's export views, defined once: TRL's columns per format.

The records themselves live with their folder's format (``folders``): ``SourceRecord`` and
``ErrorRecord`` in ``folders/records.py``, ``SampleRecord`` (a line of ``samples.jsonl``) in
``folders/samples.py``. The export views (``prompt_completion``, ``messages``,
``preference``) are computed from a ``SampleRecord`` by the functions below, so the TRL
column names live in one place. In exports ``trace`` and ``meta`` are JSON *strings*: a trace
is deeply nested and metadata differs from source to source, and a string column round-trips
through JSONL, Parquet and ``datasets`` without any schema inference surprises. Trainers
ignore both columns.
"""

from __future__ import annotations

import json
from typing import Any

from matrix_align.folders.records import ChatMessage, assistant_message
from matrix_align.folders.samples import SampleRecord, sample_flags
from matrix_align.simulation.audit import COMPLIES_WITH_HARMFUL, WORSE_THAN_FIRST

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
