"""The records of an ``evaluate`` folder and their readers.

``results.jsonl`` holds two kinds of line, each with a stable id:

- ``answer`` (``AnswerRecord``): one system's answer to one benchmark item (all turns, for
  MT-Bench), with its usage and the trace of every call it made;
- ``judgement`` (``JudgementRecord``): one metric by one judge on one answer (or on a pair,
  for pairwise), with its ``Verdict``.

``read_results`` reads both (the first line of an id wins; a line that is not a valid record
is one clear error naming it); ``current_answers`` keeps the
latest answers per item and entry, which is what judging and every report count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from matrix_align.errors import MatrixAlignError, problems
from matrix_align.folders import RESULTS
from matrix_align.folders.records import SourceRecord
from matrix_align.folders.store import read_jsonl
from matrix_align.simulation.trace import ModelCall, SceneTrace

# The judge prompt of a judgement made with matrix-align's own prompt (see
# evaluate/judge_prompts.py for the published ones a metric can use instead).
OUR_PROMPT = "ours"


class Verdict(BaseModel):
    """The outcome of one judgement. ``scored`` is False when the judge's reply could not
    be parsed: then ``label`` and ``score`` are None and the report counts it apart."""

    scored: bool
    label: str | None = None  # win/tie/lose, refusal/compliance, harmless/harmful
    score: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AnswerRecord(BaseModel):
    kind: Literal["answer"] = "answer"
    id: str
    benchmark: str
    item_id: str  # the source record's id, e.g. "advbench/17"
    entry: str  # the row name in the report: the system, or "system@tag"
    system: str
    model: str  # the model key, "backend:model"
    prompt: str
    answer: str  # the answer to the first (usually only) turn
    followups: list[str] = Field(default_factory=list)  # later user turns (MT-Bench)
    followup_answers: list[str] = Field(default_factory=list)
    initial_response: str = ""  # the system's first draft (the answer itself for one-call)
    metadata: dict[str, Any] = Field(default_factory=dict)  # the source's (label, category...)
    usage: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    traces: list[dict[str, Any]] = Field(default_factory=list)  # one SceneTrace per turn
    created_at: str = ""
    # --epochs: which of the item's K samples this is (0: the first, the only one when K=1),
    # and the id of the item's first sample, which every sample of one configuration shares
    # (how ``current_answers`` tells a later configuration's answers from earlier ones).
    epoch: int = 0
    base_id: str = ""

    @property
    def configuration(self) -> str:
        return self.base_id or self.id

    @property
    def turns(self) -> list[str]:
        return [self.prompt, *self.followups]

    @property
    def answers(self) -> list[str]:
        return [self.answer, *self.followup_answers]

    def source_record(self) -> SourceRecord:
        return SourceRecord(
            id=self.item_id, source=self.benchmark, prompt=self.prompt, metadata=self.metadata
        )


class JudgementRecord(BaseModel):
    kind: Literal["judgement"] = "judgement"
    id: str
    metric: str
    judge: str
    benchmark: str
    item_id: str
    prompt: str  # the query, so a reader can group lines without joining records
    entry: str  # the judged entry (the reference entry, for pairwise)
    baseline: str | None = None  # the other entry of a pair
    answer_ids: list[str]
    turn: int = 1
    verdict: Verdict
    usage: dict[str, Any] = Field(default_factory=dict)
    calls: list[ModelCall] = Field(default_factory=list)
    created_at: str = ""
    # Which prompt (or refusal phrase list) gave the verdict: ours, or a published one (see
    # judge_prompts). The report counts only those of the folder's current choice.
    judge_prompt: str = OUR_PROMPT


class _SceneTraces(BaseModel):
    """An answer's traces read as scene traces (the errors then say ``traces.0.query``)."""

    traces: list[SceneTrace]


def read_results(
    output: Path, *, with_traces: bool = False, with_calls: bool = False
) -> tuple[list[AnswerRecord], list[JudgementRecord]]:
    """Every stored answer and judgement, first occurrence of each id, in file order.

    Traces and judge calls are dropped unless asked for: judging and reporting need only
    the texts and the usage, and a folder of MATRIX traces can be large. A line that is not
    a valid record (its traces included, when asked for) is one error naming the line."""
    answers: list[AnswerRecord] = []
    judgements: list[JudgementRecord] = []
    seen: set[str] = set()
    for number, raw in read_jsonl(output / RESULTS):
        record_id = raw.get("id")
        if not isinstance(record_id, str) or record_id in seen:
            continue
        seen.add(record_id)
        if not with_traces:
            raw.pop("traces", None)
        if not with_calls:
            raw.pop("calls", None)
        kind = {"answer": AnswerRecord, "judgement": JudgementRecord}.get(raw.get("kind"))
        if kind is None:
            continue
        try:
            record = kind.model_validate(raw)
            # Every reader of the traces (replay, the effect's audit, view) takes them as
            # scene traces: checked here, once, for all of them.
            if raw.get("traces"):
                _SceneTraces.model_validate({"traces": raw["traces"]})
        except ValidationError as exc:  # a hand edit, or another program's line
            raise MatrixAlignError(
                f"{output / RESULTS}, line {number} (id {record_id}): not a valid "
                f"{raw['kind']} record ({problems(exc)}).",
                hint="restore that line from a copy, or delete it (the next run makes a "
                "deleted answer or judgement again)",
            ) from None
        if isinstance(record, AnswerRecord):
            answers.append(record)
        else:
            judgements.append(record)
    return answers, judgements


def current_answers(answers: list[AnswerRecord]) -> list[AnswerRecord]:
    """The latest answers per (benchmark, item, entry): a re-run with new settings supersedes
    the old answers of the same entry instead of being averaged with them. With --epochs
    an item has one answer per epoch; only those of the latest answer's configuration count
    (a later run with other settings leaves no stale epochs behind)."""

    def key(answer: AnswerRecord) -> tuple[str, str, str]:
        return answer.benchmark, answer.item_id, answer.entry

    latest = {key(answer): answer.configuration for answer in answers}
    by_epoch = {(key(a), a.configuration, a.epoch): a for a in answers}
    return [a for (k, conf, _), a in by_epoch.items() if latest[k] == conf]
