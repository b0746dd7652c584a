"""Planning an evaluation: one answer task per item, system and epoch (``plan_answers``),
then the judge tasks over the current answers (``plan_judgements``); and which judged metrics
a run needs, so a missing judge is an error before any model call.
"""

from __future__ import annotations

from collections.abc import Iterable

from matrix_align.data.sources import LoadedSource
from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.benchmarks import BENCHMARKS, Benchmark, turns
from matrix_align.evaluate.judge_prompts import JudgePrompts
from matrix_align.evaluate.metrics import (
    METRICS,
    MODEL_JUDGED,
    Planning,
    item_metrics,
    planning_order,
)
from matrix_align.evaluate.tasks import (
    AnswerTask,
    EvalSettings,
    JudgeSpec,
    JudgeTask,
    answer_id,
    entry_name,
    epoch_config,
)
from matrix_align.folders.records import SourceRecord
from matrix_align.folders.results import AnswerRecord
from matrix_align.systems import system_settings


def judged_metrics_needed(
    items: Iterable[tuple[Benchmark, SourceRecord]], metrics: list[str] | None
) -> list[str]:
    """The metrics that need a model judge among those each (benchmark, item) is scored with,
    in order of first need."""
    needed: list[str] = []
    for bench, record in items:
        for metric in item_metrics(bench, record, metrics):
            if metric in MODEL_JUDGED and metric not in needed:
                needed.append(metric)
    return needed


def require_judges(needed: list[str], have_judge: bool, explicit: bool) -> None:
    """A judged metric without a named judge is an error, never a silent self-judgement."""
    if needed and not have_judge:
        how = "asked for" if explicit else "scored by default on these benchmarks"
        raise MatrixAlignError(
            f"No judge given, but the metrics {', '.join(needed)} ({how}) need a model judge.",
            hint="name one with --judge BACKEND:MODEL, e.g. --judge openai:gpt-4o (the judge "
            "is never silently the model under test), or pass --metrics refusal to score only with "
            "the refusal-phrase detector",
        )


def plan_answers(
    settings: EvalSettings, loaded: dict[str, LoadedSource], selector_key: str | None
) -> list[AnswerTask]:
    """One task per item, system and epoch. The first epoch's id is exactly the id of a run
    without --epochs, so a folder answered once gains only the extra samples."""
    tasks: list[AnswerTask] = []
    for name in settings.benchmarks:
        bench = BENCHMARKS[name]
        for record in loaded[name].records:
            for system in settings.systems:
                entry = entry_name(system, settings.tag)
                base_id = ""
                for epoch in range(settings.epochs):
                    config = epoch_config(settings.config, epoch)
                    sys_settings = system_settings(system, config, settings.options, selector_key)
                    sys_settings["turns"] = len(turns(record))
                    if epoch:
                        sys_settings["epoch"] = epoch
                    task_id = answer_id(sys_settings, record, name, settings.model_key)
                    base_id = base_id or task_id
                    tasks.append(
                        AnswerTask(
                            id=task_id,
                            benchmark=bench,
                            record=record,
                            system=system,
                            entry=entry,
                            settings=sys_settings,
                            config=config,
                            epoch=epoch,
                            base_id=base_id,
                        )
                    )
    return tasks


def plan_judgements(
    answers: list[AnswerRecord],
    judges: list[JudgeSpec],
    metrics: list[str] | None,
    reference: str | None,
    *,
    refusal: bool = True,
    prompts: JudgePrompts = JudgePrompts(),  # noqa: B008 - frozen, so a shared default is safe
) -> list[JudgeTask]:
    """Judge tasks over the current answers, each metric's own (``Metric.tasks``): per answer
    the metrics that need no model (``refusal=False`` leaves them out), then per judge the
    single-answer metrics and the pairs (the reference against each other entry)."""
    tasks: list[JudgeTask] = []
    # Pairs are made within an epoch: the reference's k-th sample against the other's k-th.
    by_item: dict[tuple[str, str, int], dict[str, AnswerRecord]] = {}
    for answer in answers:
        by_item.setdefault((answer.benchmark, answer.item_id, answer.epoch), {})[answer.entry] = (
            answer
        )
    plan = Planning(reference=reference, by_item=by_item, prompts=prompts)
    model_free = [m for m in METRICS.values() if not m.model_judged]
    judged = planning_order()
    for answer in answers:
        bench = BENCHMARKS.get(answer.benchmark)
        if bench is None:
            continue
        wanted = item_metrics(bench, answer.source_record(), metrics)
        if refusal:
            for metric in model_free:
                if metric.name in wanted:
                    tasks += metric.tasks(answer, None, plan)
        for spec in judges:
            for metric in judged:
                if metric.name in wanted:
                    tasks += metric.tasks(answer, spec, plan)
    return tasks
