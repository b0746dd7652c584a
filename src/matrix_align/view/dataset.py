"""Reading a ``generate`` output folder for the dataset page.

The folder is read loosely, field by field (see ``loose``), rather than through the strict
record models, so one odd line never hides the rest. Traces are parsed one line at a time
and handed to a callback, so a dataset of thousands of scenes never sits in memory at once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matrix_align.folders import ERRORS, SAMPLES, SUMMARY, folder_kind
from matrix_align.redact import redact
from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAGS, audit_scene
from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.loose import as_dict, jsonl_objects, last_user, text_of

# The list keeps the start of long texts (the scene page has them whole): a page of ten
# thousand 2,000-token answers would be too heavy to open.
LIST_CHARS = 1200


def _clip(text: str, limit: int = LIST_CHARS) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


@dataclass
class SampleRow:
    """One line of the dataset page's list: a finished sample or a failure."""

    id: str
    source: str
    mode: str
    query: str
    answer: str
    status: str  # ok | fallback | failed
    turns: int = 1
    reason: str = ""  # failures: the short category
    detail: str = ""  # failures: the message
    href: str = ""  # the sample's scene page, relative to the site root
    events: int = 0
    rejected: int = 0
    calls: int = 0
    tokens: int = 0
    unchanged: bool = False  # a matrix sample whose answer is the first answer
    flags: list[str] = field(default_factory=list)  # the scene audit's flags (matrix samples)

    @property
    def dropped(self) -> bool:
        """``export`` leaves this sample out by default."""
        return bool(set(self.flags) & set(DROP_BY_DEFAULT))


@dataclass
class Dataset:
    folder: Path
    rows: list[SampleRow] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def samples(self) -> list[SampleRow]:
        return [r for r in self.rows if r.status != "failed"]

    @property
    def failures(self) -> list[SampleRow]:
        return [r for r in self.rows if r.status == "failed"]

    def counts(self, attribute: str) -> list[tuple[str, int, int]]:
        """(value, finished, failed) per value of ``attribute``, most frequent first."""
        done = Counter(getattr(r, attribute) for r in self.samples)
        failed = Counter(getattr(r, attribute) for r in self.failures)
        values = sorted(set(done) | set(failed), key=lambda v: (-(done[v] + failed[v]), v))
        return [(v, done[v], failed[v]) for v in values]

    @property
    def matrix_samples(self) -> list[SampleRow]:
        return [r for r in self.samples if r.mode == "matrix"]

    @property
    def flag_counts(self) -> list[tuple[str, int]]:
        """(flag, samples) for each flag some sample carries, in the audit's order."""
        counts = Counter(f for r in self.samples for f in r.flags)
        return [(f, counts[f]) for f in FLAGS if counts[f]] + [
            (f, n) for f, n in counts.items() if f not in FLAGS
        ]

    @property
    def failure_reasons(self) -> list[tuple[str, int]]:
        return Counter(r.reason or "unknown" for r in self.failures).most_common()


def is_dataset_folder(path: Path) -> bool:
    return folder_kind(path) == "generate"


def _flags(obj: dict[str, Any], mode: str, trace: SceneTrace | None) -> list[str]:
    """The sample's stored flags; a matrix sample written before the audit is audited from
    its trace, with the source's harmful label."""
    stored = obj.get("flags")
    if isinstance(stored, list):
        return [str(f) for f in stored]
    if mode != "matrix" or trace is None:
        return []
    harmful = as_dict(obj.get("meta")).get("harmful")
    return audit_scene(trace, harmful=harmful if isinstance(harmful, bool) else None)


def _trace(value: Any) -> SceneTrace | None:
    if not value:
        return None
    if isinstance(value, str):
        return SceneTrace.model_validate_json(value)
    return SceneTrace.model_validate(value)


def read_dataset(
    folder: Path,
    on_scene: Callable[[SampleRow, SceneTrace], str],
) -> Dataset:
    """Read ``folder``; ``on_scene(row, trace)`` renders a sample's scene and returns its href.

    A sample id that appears twice keeps its last line (a resumed run that rewrote it); a
    failure whose id later succeeded is not listed as a failure.
    """
    data = Dataset(folder)
    rows: dict[str, SampleRow] = {}
    for number, obj in jsonl_objects(folder / SAMPLES, data.warnings):
        query, turns = last_user(obj.get("prompt"))
        row = SampleRow(
            id=str(obj.get("id") or f"line-{number}"),
            source=str(obj.get("source") or "?"),
            mode=str(obj.get("mode") or "?"),
            query=_clip(query),
            answer=_clip(text_of(obj.get("completion"))),
            status="ok",
            turns=turns,
        )
        usage = as_dict(as_dict(obj.get("meta")).get("generation")).get("usage")
        if isinstance(usage, dict):
            row.calls = int(usage.get("calls") or 0)
            row.tokens = int(usage.get("prompt_tokens") or 0) + int(
                usage.get("completion_tokens") or 0
            )
        try:
            trace = _trace(obj.get("trace"))
        except (ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            data.warnings.append(f"{SAMPLES} line {number}: its trace is unreadable ({first})")
            trace = None
        row.flags = _flags(obj, row.mode, trace)
        if trace is not None:
            row.query = row.query or _clip(trace.query)
            row.events = len(trace.events)
            row.rejected = sum(1 for e in trace.events if not e.verdict.feasible)
            row.calls = row.calls or trace.totals.calls
            row.tokens = row.tokens or trace.totals.prompt_tokens + trace.totals.completion_tokens
            if trace.totals.fallbacks:
                row.status = "fallback"
            initial = str(obj.get("initial_response") or trace.initial_response).strip()
            answer = text_of(obj.get("completion")).strip()
            row.unchanged = row.mode == "matrix" and bool(initial) and initial == answer
            row.href = on_scene(row, trace)
        rows.pop(row.id, None)
        rows[row.id] = row
    for number, obj in jsonl_objects(folder / ERRORS, data.warnings):
        row_id = str(obj.get("id") or f"error-line-{number}")
        if row_id in rows and rows[row_id].status != "failed":
            continue
        rows[row_id] = SampleRow(
            id=row_id,
            source=str(obj.get("source") or "?"),
            mode=str(obj.get("mode") or "?"),
            query=_clip(str(obj.get("query") or "")),
            answer="",
            status="failed",
            reason=str(obj.get("reason") or "unknown"),
            detail=_clip(redact(str(obj.get("detail") or "")), 600),
        )
    data.rows = list(rows.values())
    summary_path = folder / SUMMARY
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            data.warnings.append(f"{SUMMARY}: not valid JSON ({exc}); summary figures skipped")
        else:
            if isinstance(summary, dict):
                data.summary = summary
            else:
                data.warnings.append(f"{SUMMARY}: not a JSON object; summary figures skipped")
    return data
