"""The units of an evaluation: what to evaluate (``EvalSettings``), the judges
(``JudgeSpec``), one answer to make (``AnswerTask``) and one judgement to make
(``JudgeTask``), with the stable ids that make a rerun resume.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matrix_align.data.sources import HubPolicy, Limit
from matrix_align.evaluate.benchmarks import Benchmark
from matrix_align.evaluate.judge_prompts import DEFAULT
from matrix_align.evaluate.judges import Judge
from matrix_align.folders.records import SourceRecord, failure_fields, id_settings, sample_id
from matrix_align.folders.results import AnswerRecord
from matrix_align.simulation.config import SimulationConfig
from matrix_align.systems import SystemOptions


@dataclass
class AnswerTask:
    id: str
    benchmark: Benchmark
    record: SourceRecord
    system: str
    entry: str
    settings: dict[str, Any]
    config: SimulationConfig  # the run's, with this epoch's seed
    epoch: int = 0
    base_id: str = ""

    def error_fields(self) -> dict[str, Any]:
        return failure_fields(id=self.id, source=self.benchmark.name, mode=f"answer:{self.entry}",
                              source_id=self.record.id, query=self.record.prompt)  # fmt: skip


@dataclass
class JudgeTask:
    id: str
    metric: str
    judge: str
    answers: list[AnswerRecord]  # one, or two for pairwise (reference first)
    turn: int = 1
    judge_prompt: str = DEFAULT

    @property
    def first(self) -> AnswerRecord:
        return self.answers[0]

    def error_fields(self) -> dict[str, Any]:
        return failure_fields(id=self.id, source=self.first.benchmark,
                              mode=f"judge:{self.metric}:{self.judge}",
                              source_id=self.first.item_id, query=self.first.prompt)  # fmt: skip


@dataclass
class JudgeSpec:
    """A model judge and the key that names it in results."""

    key: str
    judge: Judge


@dataclass
class EvalSettings:
    systems: list[str]
    benchmarks: list[str]
    output: Path
    model_key: str
    config: SimulationConfig = field(default_factory=SimulationConfig)
    options: SystemOptions = field(default_factory=SystemOptions)
    metrics: list[str] | None = None  # None: each benchmark's defaults
    reference: str | None = None  # the entry the pairwise table compares with the others
    tag: str | None = None
    limit: Limit | None = None  # items per benchmark: a count or a fraction
    shuffle: bool = False
    hub: HubPolicy = "auto"
    concurrency: int = 8
    selector: Literal["judge", "self"] = "judge"
    epochs: int = 1  # samples per item and system, each with its own derived seed
    # Judge prompt choices given by the user, metric -> choice (see judge_prompts); a metric
    # not given keeps the folder's earlier choice, else ours.
    judge_prompts: dict[str, str | None] = field(default_factory=dict)
    # An item manifest: benchmark -> source record ids. The run answers exactly these items,
    # read from the shipped samples (as ``hub="never"``) so a manifest means the same rows
    # on every machine; ``limit`` and ``shuffle`` do not apply.
    items: dict[str, list[str]] | None = None


def entry_name(system: str, tag: str | None) -> str:
    return f"{system}@{tag}" if tag else system


def answer_id(
    task_settings: dict[str, Any], record: SourceRecord, benchmark: str, model: str
) -> str:
    return sample_id(
        query=record.prompt,
        source=f"{benchmark}|{record.id}",
        mode="answer",
        config=id_settings(task_settings),
        model_key=model,
    )


def epoch_config(config: SimulationConfig, epoch: int) -> SimulationConfig:
    """The configuration of an item's ``epoch``-th sample: the run's own for the first, then
    a seed derived from the run's seed and the epoch (hashed, so that epoch 1 of seed 0 is
    not the first sample of seed 1)."""
    if epoch == 0:
        return config
    digest = hashlib.sha256(f"{config.seed}|epoch|{epoch}".encode()).hexdigest()
    return config.model_copy(update={"seed": int(digest[:8], 16)})


def judgement_id(
    metric: str,
    version: str,
    judge: str,
    answers: list[AnswerRecord],
    turn: int,
    extra: Any,
    judge_prompt: str = DEFAULT,
) -> str:
    """The id of a judgement: the metric and its ``version`` (a changed prompt judges again),
    the judge and its settings (``extra``), the answers judged and the turn."""
    if judge_prompt != DEFAULT:  # only then: ids of judgements with our prompts stay as they were
        extra = {**(extra or {}), "prompt": judge_prompt}
    return sample_id(
        query=answers[0].item_id,
        source=answers[0].benchmark,
        mode=f"judge:{metric}:turn{turn}",
        config={
            "answers": [a.id for a in answers],
            "version": version,
            "judge": extra,
        },
        model_key=judge,
    )
