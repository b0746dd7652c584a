"""``evaluate --dry-run``: the plan of an evaluation and what it will cost (see estimate.py).

Answers are grouped by benchmark and entry, judgements by judge and metric, as the run plans
them (``plan_answers``, ``plan_judgements``). Answers and judgements already in the folder
are not counted, and their recorded usage is the estimate for the rest of their group.
Judgements of answers not written yet are planned on stand-ins: the rehearsed answers.

A rehearsed judgement by a model counts its first attempts only, one per question the
metric asks (two for a pairwise verdict, one per order): the scripted double does not answer
every judge schema, so its re-asks say nothing about a real judge's. The re-asks are added
back at the rate this judge showed on the folder's stored judgements (none before it has
any). A scripted judge is the double itself, so its rehearsal is counted as it is.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from matrix_align.estimate import CostEstimate, Line, Section, UnitCost, measured, rehearse
from matrix_align.evaluate.benchmarks import turns
from matrix_align.evaluate.judge_backends import JudgeBackend
from matrix_align.evaluate.judge_prompts import resolve
from matrix_align.evaluate.judges import REFUSAL_DETECTOR, Judge
from matrix_align.evaluate.plan import plan_answers, plan_judgements
from matrix_align.evaluate.runner import Prepared, _reference, answer_task, judge_task
from matrix_align.evaluate.tasks import AnswerTask, EvalSettings, JudgeSpec
from matrix_align.folders import read_run
from matrix_align.folders.results import (
    AnswerRecord,
    JudgementRecord,
    current_answers,
    read_results,
)
from matrix_align.llm.base import ChatModel


def estimate_evaluate(
    settings: EvalSettings,
    prepared: Prepared,
    judges: list[JudgeBackend],
    *,
    backend: str,
    judge_max_tokens: int,
) -> CostEstimate:
    stored_answers, stored_judgements = read_results(settings.output, with_calls=True)
    done = {a.id for a in stored_answers} | {j.id for j in stored_judgements}
    judge_keys = [(judge.key, judge.spec.backend) for judge in judges]
    uses_selector = "best-of-n" in settings.systems and settings.selector == "judge" and judges
    selector_key = judge_keys[0][0] if uses_selector else None
    tasks = plan_answers(settings, prepared.loaded, selector_key)

    # Answers: per (benchmark, entry); stand-in records for those not written yet.
    groups: dict[tuple[str, str], list[AnswerTask]] = {}
    for task in tasks:
        groups.setdefault((task.benchmark.name, task.entry), []).append(task)
    usage_of: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for answer in stored_answers:
        if answer.model == settings.model_key:
            usage_of[(answer.benchmark, answer.system)].append(answer.usage)
    answers_section = Section("answers")
    stand_ins: list[AnswerRecord] = []
    for (bench, entry), items in groups.items():
        pending = [t for t in items if t.id not in done]

        async def run(task: AnswerTask, model: Any) -> Any:
            selector = model if selector_key else None
            return await answer_task(
                task, model, settings.config, settings.options, selector, settings.model_key
            )

        unit = measured(usage_of.get((bench, items[0].system), []))
        rehearsed, outcomes = rehearse(pending or items, run, scripted=backend == "scripted")
        unit = unit or rehearsed
        answers_section.lines.append(Line(f"{bench}: {entry}", len(items), len(pending), unit))
        examples = [o.record for o in outcomes]
        for index, task in enumerate(pending):
            if examples:
                stand_ins.append(_stand_in(task, examples[index % len(examples)]))

    # Judgements: per (judge, metric), planned over the stored and the coming answers.
    rehearsal_judges = {
        key: JudgeSpec(key, Judge(_RehearsalSlot(), key=key, max_tokens=judge_max_tokens))
        for key, _ in judge_keys
    }
    entries = list(dict.fromkeys([*(a.entry for a in stored_answers), *(t.entry for t in tasks)]))
    run = read_run(settings.output)
    reference = _reference(settings.reference, entries, run)
    prompts = resolve(settings.judge_prompts, run)
    answers = current_answers([*stored_answers, *stand_ins])
    judge_tasks = plan_judgements(answers, list(rehearsal_judges.values()), settings.metrics,
                                  reference, prompts=prompts)  # fmt: skip
    by_group: dict[tuple[str, str], list[Any]] = {}
    for task in judge_tasks:
        by_group.setdefault((task.judge, task.metric), []).append(task)
    judged_usage: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for judgement in stored_judgements:
        if judgement.judge_prompt == prompts.of(judgement.metric):  # another prompt costs apart
            judged_usage[(judgement.judge, judgement.metric)].append(judgement.usage)
    backends = dict(judge_keys)
    judges_section = Section("judgements")
    for (judge, metric), items in by_group.items():
        pending = [t for t in items if t.id not in done]
        unit = measured(judged_usage.get((judge, metric), []))
        if unit is None:

            async def run_judge(task: Any, model: Any, key: str = judge) -> Any:
                judge_obj = Judge(model, key=key, max_tokens=judge_max_tokens)
                return await judge_task(task, {key: judge_obj})

            scripted = backends.get(judge) == "scripted"
            unit, outcomes = rehearse(pending or items, run_judge, scripted=scripted)
            if not scripted:  # the double's re-asks are the real run's only when it judges
                unit = _first_attempts(unit, outcomes, reask_rate(stored_judgements, judge))
        label = f"{judge}: {metric}" if judge != REFUSAL_DETECTOR else f"{metric} (no model)"
        judges_section.lines.append(Line(label, len(items), len(pending), unit))

    n_items = {name: len(src.records) for name, src in prepared.loaded.items()}
    plan = [
        "plan: " + ", ".join(f"{name} {n} items" for name, n in n_items.items())
        + f"; systems {', '.join(settings.systems)} on {settings.model_key}",
        "judges: " + (", ".join(k for k, _ in judge_keys) or "none") + "; metrics: "
        + (", ".join(settings.metrics) if settings.metrics else "each benchmark's default")
        + "; judge prompts: " + ", ".join(f"{m} {c}" for m, c in prompts.as_dict().items()),
    ]  # fmt: skip
    return CostEstimate([answers_section, judges_section], plan=plan)


def reask_rate(judgements: list[JudgementRecord], judge: str) -> float:
    """Re-asks per first attempt in ``judge``'s stored judgements (0 when it has none)."""
    attempts = [call.attempt for j in judgements if j.judge == judge for call in j.calls]
    first = sum(1 for a in attempts if a == 1)
    return (len(attempts) - first) / first if first else 0.0


def _first_attempts(unit: UnitCost, outcomes: list[Any], rate: float) -> UnitCost:
    """``unit`` counted on the rehearsal's first attempts, plus re-asks at ``rate``; the
    tokens scale with the calls (a re-ask is the same question again)."""
    calls = [call for outcome in outcomes for call in outcome.record.calls]
    if not calls:
        return unit  # no model call (the refusal detector)
    first = sum(1 for call in calls if call.attempt == 1) / len(outcomes)
    scale = first * (1 + rate) / unit.calls
    basis = f"{unit.basis}, re-asks {rate:.0%}"
    return UnitCost(first * (1 + rate), unit.prompt_tokens * scale,
                    unit.completion_tokens * scale, basis)  # fmt: skip


class _RehearsalSlot(ChatModel):
    """A judge model that is never called: planning only needs the judge's settings."""

    name = "rehearsal"

    async def complete(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise RuntimeError("planning never calls the judge")


def _stand_in(task: AnswerTask, example: AnswerRecord) -> AnswerRecord:
    """The answer ``task`` will produce, for planning its judgements: the task's identity with
    a rehearsed answer's texts."""
    followups = turns(task.record)[1:]
    replies = example.followup_answers or [example.answer]
    return example.model_copy(
        update={
            "id": task.id,
            "benchmark": task.benchmark.name,
            "item_id": task.record.id,
            "entry": task.entry,
            "system": task.system,
            "prompt": task.record.prompt,
            "metadata": task.record.metadata,
            "followups": followups,
            "followup_answers": [replies[i % len(replies)] for i in range(len(followups))],
            "traces": [],
        }
    )
