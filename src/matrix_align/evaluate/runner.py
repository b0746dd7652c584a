"""An evaluation run: answers first, then judgements, both resumable, then the report.

An output folder *is* an evaluation. ``results.jsonl`` holds two kinds of line, each with
a stable id (``folders.records.sample_id`` of everything that determines it; the records
and their readers are ``folders/results.py``):

- ``answer``: one system's answer to one benchmark item (all turns, for MT-Bench), with
  its usage (calls, tokens, wall time) and the trace of every call it made;
- ``judgement``: one metric by one judge on one answer (or on a pair, for pairwise).

Both phases run on the shared ``batch.BatchRunner``: bounded concurrency, records appended
and fsync-ed as they finish, finished ids skipped on a re-run, failures written to
``errors.jsonl`` and retried next time. Every run adds to the folder: the judge phase and
the report cover every answer in it (the latest per benchmark item and entry), so a second
run with another ``--tag`` (e.g. a fine-tuned model) joins the same tables, and
``rejudge`` is simply the judge phase again with other judges, without regenerating.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matrix_align.batch import BatchRunner, Outcome, ProgressState, RunStats, now_iso
from matrix_align.data.sources import LoadedSource
from matrix_align.errors import MatrixAlignError, RunFailed
from matrix_align.evaluate.benchmarks import (
    BENCHMARKS,
    check_benchmarks,
    load_benchmark,
    turns,
)
from matrix_align.evaluate.judge_prompts import (
    RUN_KEY,
    JudgePrompts,
    check_choice,
    resolve,
)
from matrix_align.evaluate.judges import (
    REFUSAL_DETECTOR,
    Judge,
)
from matrix_align.evaluate.metrics import METRICS, check_metrics
from matrix_align.evaluate.plan import (
    judged_metrics_needed,
    plan_answers,
    plan_judgements,
    require_judges,
)
from matrix_align.evaluate.tasks import AnswerTask, EvalSettings, JudgeSpec, JudgeTask, entry_name
from matrix_align.folders import ERRORS, REPORT, RESULTS, RUN, SUMMARY, read_run, require_kind
from matrix_align.folders.records import (
    ChatMessage,
    SourceRecord,
    audit_answer,
    render_conversation,
)
from matrix_align.folders.results import (
    AnswerRecord,
    JudgementRecord,
    current_answers,
    read_results,
)
from matrix_align.folders.store import DirectoryLock
from matrix_align.io import atomic_write_json
from matrix_align.llm.base import ChatModel
from matrix_align.provenance import (
    TEMPLATES_KEY,
    config_templates_sha256,
    dataset_revisions,
    provenance_record,
    stamp,
    templates_mismatch,
)
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import SceneTrace, Usage
from matrix_align.systems import (
    SYSTEMS,
    SystemOptions,
    check_systems,
    respond_full,
)

Phase = Literal["answers", "judgements"]
ProgressFn = Callable[[Phase, ProgressState], None]


# --- the folder ---------------------------------------------------------------------------


def check_entries(answers: list[AnswerRecord], entries: Iterable[str], model_key: str) -> None:
    """One entry name, one model: answers of two models under one name would be mixed in
    every table, so a second model must be told apart with ``--tag``."""
    stored = {a.entry: a.model for a in answers}
    clashes = sorted({e for e in entries if e in stored and stored[e] != model_key})
    if clashes:
        _clash(clashes, stored[clashes[0]], model_key)


def _clash(entries: list[str], stored_model: str, model_key: str) -> None:
    raise MatrixAlignError(
        f"The output folder already holds answers for {', '.join(entries)} from model "
        f"{stored_model}, not {model_key}.",
        hint="pass --tag NAME to add this model as new entries (e.g. vanilla@NAME), or "
        "use another --output folder",
    )


def check_templates(
    output: Path, stored: list[AnswerRecord], run: dict[str, Any], config: Any = None
) -> None:
    """One folder, one set of scene prompt templates: answer ids hash the templates, so
    after a template change (or with answers from before ids did) a run would answer every
    item again beside the stored answers. Judging and the report still work."""
    why = templates_mismatch(run.get(TEMPLATES_KEY), config) if stored else None
    if why:
        raise MatrixAlignError(
            f"{output} holds answers that {why}, so this run would answer every item again.",
            hint="use a new --output folder; `evaluate --rejudge` and the report still work "
            "on this one",
        )


# --- answering ----------------------------------------------------------------------------


async def answer_task(
    task: AnswerTask,
    model: ChatModel,
    config: SimulationConfig,
    options: SystemOptions,
    selector: ChatModel | None,
    model_key: str,
) -> Outcome:
    """One system on one item; a multi-turn item sends each follow-up after the previous
    answer, the conversation so far rendered into the query (systems take one query)."""
    started = time.perf_counter()
    user_turns = turns(task.record)
    history: list[ChatMessage] = []
    answers: list[str] = []
    traces: list[SceneTrace] = []
    initial = ""
    for index, user_turn in enumerate(user_turns):
        history.append(ChatMessage(role="user", content=user_turn))
        query = user_turn if index == 0 else render_conversation(history)
        response = await respond_full(
            task.system, query, model, config, options=options, selector=selector
        )
        if index == 0:
            initial = response.initial_response
        if task.system == "matrix":  # stored answers carry the scene audit, label included
            audit_answer(response.trace, task.record)
        stamp(response.trace, model, config)
        answers.append(response.answer)
        traces.append(response.trace)
        history.append(ChatMessage(role="assistant", content=response.answer))
    usage = Usage.of_traces(traces, time.perf_counter() - started)
    record = AnswerRecord(
        id=task.id,
        benchmark=task.benchmark.name,
        item_id=task.record.id,
        entry=task.entry,
        system=task.system,
        model=model_key,
        prompt=task.record.prompt,
        answer=answers[0],
        followups=user_turns[1:],
        followup_answers=answers[1:],
        initial_response=initial,
        metadata=task.record.metadata,
        usage={**usage.as_dict(), "turns": len(user_turns)},
        settings=task.settings,
        traces=[t.model_dump(mode="json") for t in traces],
        created_at=now_iso(),
        epoch=task.epoch,
        base_id=task.base_id,
    )
    return Outcome(record=record, usage=usage)


# --- judging ------------------------------------------------------------------------------


async def judge_task(task: JudgeTask, judges: dict[str, Judge]) -> Outcome:
    """One judgement, made as its metric makes it (``Metric.judge``)."""
    answer = task.first
    judged = await METRICS[task.metric].judge(task, judges.get(task.judge))
    usage = Usage.of_calls(judged.calls)
    record = JudgementRecord(
        id=task.id,
        metric=task.metric,
        judge=task.judge,
        benchmark=answer.benchmark,
        item_id=answer.item_id,
        prompt=answer.prompt,
        entry=answer.entry,
        baseline=task.answers[1].entry if len(task.answers) > 1 else None,
        answer_ids=[a.id for a in task.answers],
        turn=task.turn,
        verdict=judged.verdict,
        usage=usage.as_dict(),
        calls=judged.calls,
        created_at=now_iso(),
        judge_prompt=task.judge_prompt,
    )
    return Outcome(record=record, usage=usage)


# --- the two commands ---------------------------------------------------------------------


@dataclass
class EvalResult:
    output: Path
    answer_stats: RunStats | None
    judge_stats: RunStats
    notes: list[str]
    report: Path
    # Judges that were asked for verdicts and gave none (every judgement failed): judge ->
    # the metrics now missing from the report. The command fails on these.
    silent_judges: dict[str, list[str]] = field(default_factory=dict)


def _reference(given: str | None, entries: list[str], run: dict[str, Any]) -> str | None:
    """The entry pairwise judging compares with every other: the user's choice, else the
    folder's earlier choice, else MATRIX (the paper's comparison), else the first entry."""
    if given is not None:
        if given not in entries:
            raise MatrixAlignError(
                f"Unknown --reference {given!r}.", hint=f"entries: {', '.join(entries)}"
            )
        return given
    if run.get("reference") in entries:
        return str(run["reference"])
    for entry in entries:
        if entry.split("@", 1)[0] == "matrix":
            return entry
    return entries[0] if entries else None


def _selector(
    settings: EvalSettings, judges: list[JudgeSpec], notes: list[str]
) -> tuple[ChatModel | None, str | None]:
    """Who picks best-of-n's sample: the first judge (as a reward model would), or the
    model itself when asked or when there is no judge (said in the notes)."""
    if "best-of-n" not in settings.systems:
        return None, None
    if settings.selector == "judge" and judges:
        return judges[0].judge.model, judges[0].key
    notes.append("best-of-n: the model under test picks its own best sample.")
    return None, None


async def run_phase(
    output: Path,
    items: list[Any],
    work: Callable[[Any], Any],
    *,
    concurrency: int,
    phase: Phase,
    on_progress: ProgressFn | None,
) -> tuple[RunStats, list[str]]:
    runner = BatchRunner(
        output,
        concurrency=concurrency,
        samples_file=RESULTS,
        errors_file=ERRORS,
        on_progress=(lambda state: on_progress(phase, state)) if on_progress else None,
    )
    runner.open()
    try:
        stats = await runner.run(items, work)
    finally:
        runner.close()
    return stats, runner.open_notes


def load_benchmarks(settings: EvalSettings) -> tuple[dict[str, LoadedSource], list[str]]:
    check_benchmarks(settings.benchmarks)
    loaded: dict[str, LoadedSource] = {}
    notes: list[str] = []
    for name in settings.benchmarks:
        if settings.items is not None:
            source = load_benchmark(name, limit=None, hub="never")
            source.records = select_items(name, source.records, settings.items[name])
        else:
            source = load_benchmark(
                name,
                limit=settings.limit,
                hub=settings.hub,
                shuffle=settings.shuffle,
                seed=settings.config.seed,
            )
        loaded[name] = source
        notes += [n for n in source.notes if n not in notes]
    return loaded, notes


def select_items(name: str, records: list[SourceRecord], ids: list[str]) -> list[SourceRecord]:
    """The records with these ids, in the manifest's order; an id the data lacks is an error
    (a manifest that silently shrinks would change what the figures mean)."""
    by_id = {record.id: record for record in records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MatrixAlignError(
            f"Benchmark {name!r}: {len(missing)} listed item(s) not in its shipped sample: "
            f"{', '.join(missing[:5])}{more}.",
            hint="item ids are source record ids such as 'advbench/17'; check the manifest",
        )
    return [by_id[i] for i in dict.fromkeys(ids)]


def validate(settings: EvalSettings, judges: list[JudgeSpec]) -> None:
    """Every name and judge problem, before loading data or calling a model."""
    check_systems(settings.systems)
    check_benchmarks(settings.benchmarks)
    if settings.metrics is not None:
        check_metrics(settings.metrics)
    if settings.concurrency < 1:
        raise MatrixAlignError("--concurrency must be at least 1.")
    if settings.epochs < 1:
        raise MatrixAlignError("--epochs must be at least 1.")
    for metric, choice in settings.judge_prompts.items():
        if choice is not None:
            check_choice(metric, choice)
    if settings.items is not None:
        if settings.limit is not None or settings.shuffle:
            raise MatrixAlignError("An item list selects the items: drop --limit and --shuffle.")
        if set(settings.items) != set(settings.benchmarks):
            raise MatrixAlignError(
                "The item list and the benchmarks differ: "
                f"{', '.join(sorted(settings.items))} vs {', '.join(sorted(settings.benchmarks))}.",
                hint="run the benchmarks the item list names",
            )
    keys = [j.key for j in judges]
    if len(set(keys)) != len(keys):
        raise MatrixAlignError(
            "The same judge is named twice.", hint="each --judge must name its own backend:model"
        )


@dataclass
class Prepared:
    """What ``prepare`` checked and loaded, so ``evaluate`` does not load it twice."""

    loaded: dict[str, LoadedSource]
    notes: list[str]


def prepare(settings: EvalSettings, n_judges: int) -> Prepared:
    """Every check that needs no model: names, benchmark data (loaded in full), the output
    folder's entries, and a judge for every judged metric. Run before building backends."""
    validate(settings, [])
    require_kind(settings.output, "evaluate", "--output")
    loaded, notes = load_benchmarks(settings)
    stored, _ = read_results(settings.output)
    check_templates(settings.output, stored, read_run(settings.output), settings.config)
    new_entries = {entry_name(s, settings.tag) for s in settings.systems}
    stored_models = {a.entry: a.model for a in stored}
    clashes = sorted(
        e for e in new_entries if e in stored_models and stored_models[e] != settings.model_key
    )
    if clashes:
        _clash(clashes, stored_models[clashes[0]], settings.model_key)
    entries = set(stored_models) | new_entries
    records = {name: source.records for name, source in loaded.items()}
    needed = judged_metrics_needed(
        ((BENCHMARKS[n], r) for n in settings.benchmarks for r in records.get(n, [])),
        settings.metrics,
    )
    if "pairwise" in needed and len(entries) < 2:
        needed.remove("pairwise")
        if settings.metrics is not None and "pairwise" in settings.metrics:
            raise MatrixAlignError(
                "Pairwise judging needs at least two systems.", hint="add a system to --systems"
            )
    require_judges(needed, n_judges > 0, explicit=settings.metrics is not None)
    return Prepared(loaded, notes)


async def evaluate(
    settings: EvalSettings,
    model: ChatModel,
    judges: list[JudgeSpec],
    *,
    prepared: Prepared | None = None,
    on_progress: ProgressFn | None = None,
    report: bool = True,
) -> EvalResult:
    """Answer every benchmark item with every system, judge the answers, write the report."""
    validate(settings, judges)
    prepared = prepared or prepare(settings, len(judges))
    loaded, notes = prepared.loaded, list(prepared.notes)
    output = settings.output
    with DirectoryLock(output):
        stored_answers, _ = read_results(output)
        run = read_run(output)
        selector, selector_key = _selector(settings, judges, notes)
        tasks = plan_answers(settings, loaded, selector_key)
        check_entries(stored_answers, (t.entry for t in tasks), settings.model_key)
        entries = list(
            dict.fromkeys([*(a.entry for a in stored_answers), *(t.entry for t in tasks)])
        )
        reference = _reference(settings.reference, entries, run)
        prompts = resolve(settings.judge_prompts, run)
        run_info = {
            **run,
            "updated_at": now_iso(),
            "entries": entries,
            "reference": reference,
            "judges": list(dict.fromkeys([j.key for j in judges] + list(run.get("judges") or []))),
            "metrics": settings.metrics,
            RUN_KEY: prompts.as_dict(),
            "epochs": max(settings.epochs, int(run.get("epochs") or 1)),
            "benchmarks": {
                **(run.get("benchmarks") or {}),
                **{
                    name: {
                        "origin": src.origin,
                        "selected": len(src.records),
                        "available": src.available,
                    }
                    for name, src in loaded.items()
                },
            },
            "models": {**(run.get("models") or {}), **{t.entry: settings.model_key for t in tasks}},
            "simulation": settings.config.model_dump(mode="json"),
            "system_options": settings.options.model_dump(mode="json"),
            "notes": notes,
            TEMPLATES_KEY: config_templates_sha256(settings.config),
        }

        def provenance() -> dict[str, Any]:
            judge_models = {spec.key: spec.judge.model for spec in judges}
            return provenance_record(
                model, datasets=dataset_revisions(loaded.values()), models=judge_models
            )

        run_info["provenance"] = provenance()
        atomic_write_json(output / RUN, run_info)

        async def work(task: AnswerTask) -> Outcome:
            return await answer_task(
                task, model, task.config, settings.options, selector, settings.model_key
            )

        answer_stats, open_notes = await run_phase(
            output,
            tasks,
            work,
            concurrency=settings.concurrency,
            phase="answers",
            on_progress=on_progress,
        )
        # Again after answering: the server has named its model by now.
        notes += open_notes
        atomic_write_json(output / RUN, run_info | {"notes": notes, "provenance": provenance()})
        if answer_stats.aborted:
            raise RunFailed(
                f"Stopped early: {answer_stats.aborted}.",
                hint="check the backend, then rerun the same command: finished answers are "
                "kept and failed ones retried",
            )
        judge_stats, report_path, silent = await _judge_and_report(
            output,
            judges,
            settings.metrics,
            reference,
            prompts,
            concurrency=settings.concurrency,
            on_progress=on_progress,
            report=report,
        )
    return EvalResult(output, answer_stats, judge_stats, notes, report_path, silent)


async def rejudge(
    output: Path,
    judges: list[JudgeSpec],
    *,
    metrics: list[str] | None = None,
    reference: str | None = None,
    judge_prompts: dict[str, str | None] | None = None,
    concurrency: int = 8,
    on_progress: ProgressFn | None = None,
) -> EvalResult:
    """Judge the stored answers of an evaluation folder again (other judges, other metrics,
    other judge prompts) and rewrite its report; no answer is regenerated."""
    output = Path(output)
    if not (output / RESULTS).exists():
        raise MatrixAlignError(
            f"{output} is not an evaluation folder (no {RESULTS}).",
            hint="pass the --output folder of an earlier `matrix-align evaluate` run",
        )
    if metrics is not None:
        check_metrics(metrics)
    with DirectoryLock(output):
        answers, _ = read_results(output)
        answers = current_answers(answers)
        if not answers:
            raise MatrixAlignError(f"{output} holds no answers to judge.")
        run = read_run(output)
        entries = list(dict.fromkeys([*(run.get("entries") or []), *(a.entry for a in answers)]))
        reference = _reference(reference, entries, run)
        prompts = resolve(judge_prompts or {}, run)
        needed = judged_metrics_needed(
            (
                (BENCHMARKS[a.benchmark], a.source_record())
                for a in answers
                if a.benchmark in BENCHMARKS
            ),
            metrics,
        )
        if "pairwise" in needed and len(entries) < 2:
            needed.remove("pairwise")
        require_judges(needed, bool(judges), explicit=metrics is not None)
        run["judges"] = list(dict.fromkeys([j.key for j in judges] + list(run.get("judges") or [])))
        run["reference"] = reference
        run[RUN_KEY] = prompts.as_dict()
        run["updated_at"] = now_iso()
        atomic_write_json(output / RUN, run)
        judge_stats, report_path, silent = await _judge_and_report(
            output, judges, metrics, reference, prompts, concurrency=concurrency,
            on_progress=on_progress,
        )  # fmt: skip
    return EvalResult(output, None, judge_stats, [], report_path, silent)


async def _judge_and_report(
    output: Path,
    judges: list[JudgeSpec],
    metrics: list[str] | None,
    reference: str | None,
    prompts: JudgePrompts,
    *,
    concurrency: int,
    on_progress: ProgressFn | None,
    report: bool = True,
) -> tuple[RunStats, Path, dict[str, list[str]]]:
    answers, _ = read_results(output)
    answers = current_answers(answers)
    tasks = plan_judgements(answers, judges, metrics, reference, prompts=prompts)
    table = {spec.key: spec.judge for spec in judges}

    async def work(task: JudgeTask) -> Outcome:
        return await judge_task(task, table)

    stats, _ = await run_phase(
        output, tasks, work, concurrency=concurrency, phase="judgements", on_progress=on_progress
    )
    path = output / REPORT
    if report:
        from matrix_align.evaluate.report import write_report

        path = write_report(output)
    summary = {
        "updated_at": now_iso(),
        "answers": len(answers),
        "judgements_planned": len(tasks),
        "judgements_failed_this_run": stats.failed,
        "failures_by_reason": stats.failures_by_reason,
        "judge_wall_time_s": stats.wall_time_s,
    }
    atomic_write_json(output / SUMMARY, summary)
    return stats, path, _silent_judges(output, tasks)


def _silent_judges(output: Path, tasks: list[JudgeTask]) -> dict[str, list[str]]:
    """Judges with planned judgements and not one stored verdict among them."""
    _, judgements = read_results(output)
    stored = {j.id for j in judgements}
    planned: dict[str, list[JudgeTask]] = {}
    for task in tasks:
        planned.setdefault(task.judge, []).append(task)
    return {
        judge: list(dict.fromkeys(t.metric for t in mine))
        for judge, mine in planned.items()
        if judge != REFUSAL_DETECTOR and not any(t.id in stored for t in mine)
    }


__all__ = [
    "AnswerRecord",
    "EvalResult",
    "EvalSettings",
    "JudgeSpec",
    "JudgementRecord",
    "SYSTEMS",
    "evaluate",
    "read_results",
    "rejudge",
]
