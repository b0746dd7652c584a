"""``matrix-align generate``: many queries -> a dataset, resumably: the plan, the answer
modes, the summary, on the shared batch runner (``batch.py``).

Why it is built this way:
- **Throughput** comes from many scenes in flight (``concurrency``), so a continuous-
  batching server (vLLM, SGLang, llama.cpp slots) always has work; the backend caps the
  requests actually sent at once (``--parallel`` per endpoint).
- **Nothing lost, nothing twice**: every sample has a stable id computed before it runs
  (``folders.records.sample_id``). Finished samples are appended and fsync-ed to ``samples.jsonl``
  the moment they complete; a re-run skips the ids already there. A sample that still fails
  after the backend's retries goes to ``errors.jsonl`` with its reason and the batch goes
  on; the next run retries it.
- **A dead server does not burn the queue**: after ``abort_after`` consecutive failures the
  run stops taking new samples, writes its summary and reports the last reason.
- **Reuse**: ``batch.BatchRunner`` knows nothing about MATRIX. It runs any ``work(item)``
  that returns an ``Outcome``, which is how ``evaluate`` runs its systems and judges with the
  same resume and error handling. Answer modes are the ``ANSWERERS`` table: matrix, direct
  and every baseline of ``systems`` by its name.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.batch import (
    BatchRunner,
    EmptyAnswerError,
    Outcome,
    ProgressState,
    RunStats,
    now_iso,
)
from matrix_align.data import preference_modes
from matrix_align.data.sources import (
    HubPolicy,
    Limit,
    LoadedSource,
    get_source,
    load_input_file,
    load_source,
    source_name,
)
from matrix_align.errors import (
    MatrixAlignError,
    RunFailed,
)
from matrix_align.folders import ERRORS, RUN, SAMPLES, SUMMARY, require_kind
from matrix_align.folders.records import (
    SourceRecord,
    assistant_message,
    audit_answer,
    failure_fields,
    id_settings,
    sample_id,
)
from matrix_align.folders.samples import SampleRecord, sample_flags
from matrix_align.folders.store import DirectoryLock
from matrix_align.io import atomic_write_json, read_json_object
from matrix_align.llm.base import ChatModel
from matrix_align.provenance import (
    TEMPLATES_KEY,
    config_templates_sha256,
    dataset_revisions,
    provenance_record,
    stamp,
    templates_mismatch,
)
from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAGS
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import Usage
from matrix_align.systems import SYSTEMS, respond_full

# --- what to generate -----------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """``NAME[@SPLIT][:MODE[:N]]`` (or ``NAME:N``): one built-in source of a mix."""

    name: str
    mode: str
    limit: int | None = None
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        parts = text.strip().split(":")
        head, rest = parts[0], parts[1:]
        name, _, split = head.partition("@")
        name = source_name(name)  # hh_harmless, strong_reject: the project's spelling
        info = get_source(name)  # unknown names fail here, listing the valid ones
        mode: str = info.default_mode
        limit: int | None = None
        if rest and rest[0].isdigit() and len(rest) == 1:
            rest = [mode, rest[0]]
        if len(rest) > 2:
            raise MatrixAlignError(
                f"Bad --source {text!r}.",
                hint="write NAME[:matrix|direct[:N]], e.g. advbench:matrix:500",
            )
        if rest:
            mode = rest[0] or mode
            if mode not in ANSWERERS:
                raise MatrixAlignError(
                    f"Bad --source {text!r}: unknown mode {mode!r}.",
                    hint=f"modes: {', '.join(ANSWERERS)}",
                )
        if len(rest) == 2:
            if not rest[1].isdigit() or int(rest[1]) < 1:
                raise MatrixAlignError(
                    f"Bad --source {text!r}: the count must be a positive whole number."
                )
            limit = int(rest[1])
        return cls(name=name, mode=mode, limit=limit, split=split or None)


@dataclass
class WorkItem:
    """One sample to produce: a query, the mode to answer it in, and its stable id."""

    id: str
    mode: str
    record: SourceRecord

    def error_fields(self) -> dict[str, Any]:
        return failure_fields(id=self.id, source=self.record.source, mode=self.mode,
                              source_id=self.record.id, query=self.record.prompt)  # fmt: skip


@dataclass
class Plan:
    items: list[WorkItem]
    sources: list[tuple[LoadedSource, str]]  # each loaded source with its mode
    notes: list[str] = field(default_factory=list)
    duplicates: int = 0  # queries planned twice with the same id (kept once)


def build_plan(
    sources: Sequence[SourceSpec],
    inputs: Sequence[str | Path] = (),
    *,
    config: SimulationConfig,
    model_key: str,
    input_mode: str = "matrix",
    prompt_field: str = "prompt",
    limit: Limit | None = None,
    shuffle: bool = False,
    seed: int = 0,
    hub: HubPolicy = "auto",
) -> Plan:
    """Load and validate every source, then give each query its id. No model is involved,
    so every input problem surfaces before the first call. ``limit`` caps each source that
    has no count of its own."""
    if not sources and not inputs:
        raise MatrixAlignError(
            "Nothing to generate.",
            hint="add --source NAME[:matrix|direct[:N]] and/or --input FILE",
        )
    if input_mode not in ANSWERERS:
        raise MatrixAlignError(
            f"Unknown --input-mode {input_mode!r}.", hint=f"modes: {', '.join(ANSWERERS)}"
        )
    loaded: list[tuple[LoadedSource, str]] = []
    for spec in sources:
        source = load_source(
            spec.name,
            split=spec.split,
            hub=hub,
            limit=spec.limit if spec.limit is not None else limit,
            shuffle=shuffle,
            seed=seed,
        )
        loaded.append((source, spec.mode))
    for path in inputs:
        source = load_input_file(
            path, prompt_field=prompt_field, limit=limit, shuffle=shuffle, seed=seed
        )
        loaded.append((source, input_mode))
    dump = id_settings(config.model_dump(mode="json"), config)
    items: list[WorkItem] = []
    seen: set[str] = set()
    notes: list[str] = []
    duplicates = 0
    for source, mode in loaded:
        for note in source.notes:
            if note not in notes:
                notes.append(note)
        for record in source.records:
            item_id = sample_id(
                query=record.prompt,
                source=record.source,
                mode=mode,
                config=dump,
                model_key=model_key,
            )
            if item_id in seen:
                duplicates += 1
                continue
            seen.add(item_id)
            items.append(WorkItem(id=item_id, mode=mode, record=record))
    if not items:
        raise MatrixAlignError("The sources hold no queries.", hint="check --limit and the files")
    return Plan(items=items, sources=loaded, notes=notes, duplicates=duplicates)


# --- answering one item ---------------------------------------------------------------


Answerer = Callable[[WorkItem, ChatModel, SimulationConfig], Awaitable[Outcome]]


def _sample(
    item: WorkItem,
    model: ChatModel,
    trace: Any,
    answer: str,
    usage: Usage,
    flags: list[str] | None = None,
) -> Outcome:
    if not answer.strip():
        raise EmptyAnswerError("the model produced an empty final answer")
    stamp(trace, model)  # run_scene stamped it, with its templates
    meta = {
        **item.record.metadata,
        "source_id": item.record.id,
        "generation": {
            "model": getattr(model, "name", ""),
            "usage": usage.as_dict(),
            "created_at": now_iso(),
        },
    }
    record = SampleRecord(
        id=item.id,
        source=item.record.source,
        mode=item.mode,
        prompt=item.record.chat(),  # type: ignore[arg-type]
        completion=[assistant_message(answer)],  # type: ignore[list-item]
        initial_response=trace.initial_response if item.mode != "direct" else "",
        trace=trace.model_dump_json(),
        flags=flags,
        meta=meta,
    )
    return Outcome(record=record, usage=usage)


async def answer_matrix(item: WorkItem, model: ChatModel, config: SimulationConfig) -> Outcome:
    """The MATRIX answer: a whole simulated scene, its final response the completion."""
    from matrix_align.simulation.scene import run_scene

    started = time.perf_counter()
    trace = await run_scene(item.record.prompt, model, config)
    wall = time.perf_counter() - started
    if not trace.totals.calls and trace.calls:
        trace.recompute_totals(wall)
    audit_answer(trace, item.record)
    usage = Usage.of_traces([trace], wall)
    return _sample(item, model, trace, trace.final_response, usage, flags=trace.flags)


async def answer_direct(item: WorkItem, model: ChatModel, config: SimulationConfig) -> Outcome:
    """The model's own answer, no simulation (the paper's helpful half). The trace holds
    the single call, so every record has the same provenance column."""
    from matrix_align.simulation.answer import direct_answer
    from matrix_align.simulation.trace import SceneTrace

    started = time.perf_counter()
    started_at = now_iso()
    text, call = await direct_answer(item.record.prompt, model, config)
    wall = time.perf_counter() - started
    trace = SceneTrace(
        query=item.record.prompt,
        config=config.model_dump(mode="json"),
        actor_model=getattr(model, "name", ""),
        initial_response=text,
        final_response=text,
        calls=[call],
        started_at=started_at,
    )
    trace.recompute_totals(wall)
    return _sample(item, model, trace, text, Usage.of_traces([trace], wall))


def answer_with_system(name: str) -> Answerer:
    """A baseline of ``systems`` (critique-revise, self-align, ...) as an answer mode: its
    answers become a training set, as for the paper's training-time baselines."""

    async def answer(item: WorkItem, model: ChatModel, config: SimulationConfig) -> Outcome:
        started = time.perf_counter()
        response = await respond_full(name, item.record.prompt, model, config)
        wall = time.perf_counter() - started
        trace = response.trace
        if not trace.initial_response:
            trace.initial_response = response.initial_response
        return _sample(item, model, trace, response.answer, Usage.of_traces([trace], wall))

    return answer


def answer_with_pair(
    make: Callable[[str, ChatModel, SimulationConfig], Awaitable[Any]],
) -> Answerer:
    """A preference-pair method (``preference_modes``: RLcd, RLAIF) as an answer mode: the
    chosen answer is the completion, the rejected one the first answer, as in a MATRIX
    sample, so the preference export holds the pair."""

    async def answer(item: WorkItem, model: ChatModel, config: SimulationConfig) -> Outcome:
        started = time.perf_counter()
        trace = await make(item.record.prompt, model, config)
        wall = time.perf_counter() - started
        return _sample(item, model, trace, trace.final_response, Usage.of_traces([trace], wall))

    return answer


# Answer modes by name: the scene (matrix), the model's own answer (direct), every baseline
# of ``systems`` by its system name (``vanilla`` is ``direct``), so a new system is a mode as
# soon as it is in ``SYSTEMS``, and the training-time baselines that make preference pairs.
ANSWERERS: dict[str, Answerer] = {
    "matrix": answer_matrix,
    "direct": answer_direct,
    **{name: answer_with_system(name) for name in SYSTEMS if name not in ("matrix", "vanilla")},
    "rlcd": answer_with_pair(preference_modes.rlcd),
    "rlaif": answer_with_pair(preference_modes.rlaif),
}


def _sample_index(record: dict[str, Any]) -> dict[str, Any]:
    """What the runner keeps in memory per stored sample, for the summary of the folder."""
    usage = record.get("meta", {}).get("generation", {}).get("usage", {})
    flags = record.get("flags")
    if flags is None and record.get("mode") == "matrix":  # written before the audit
        try:
            flags = sample_flags(SampleRecord.model_validate(record))
        except ValueError:
            flags = None
    return {"source": record.get("source"), "mode": record.get("mode"), "usage": usage,
            "flags": flags}  # fmt: skip


# --- summary --------------------------------------------------------------------------


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 2) if values else 0.0


def _audit_counts(entries: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The scene audit over the dataset's matrix samples: how many are free of the flags
    ``export`` drops by default (``DROP_BY_DEFAULT``), and how many samples carry each flag."""
    flagged = [e.get("flags") or [] for e in entries if e.get("mode") == "matrix"]
    clean = sum(1 for flags in flagged if not set(flags) & set(DROP_BY_DEFAULT))
    by_flag = Counter(flag for flags in flagged for flag in flags)
    audit = {
        "matrix_samples": len(flagged),
        "without_dropped_flags": clean,
        "without_dropped_flags_fraction": round(clean / len(flagged), 3) if flagged else None,
    }
    return audit, {flag: by_flag[flag] for flag in FLAGS}


def summarize(
    runner: BatchRunner,
    plan: Plan,
    stats: RunStats,
    *,
    config: SimulationConfig,
    model_info: dict[str, Any],
) -> dict[str, Any]:
    """summary.json: the dataset's counts (planned = done + failed + pending), failures by
    reason, calls and tokens per sample by mode, the scene audit of the matrix samples, and
    this run's wall time and rates."""
    planned_ids = {item.id for item in plan.items}
    done_ids = planned_ids & runner.samples.ids
    failed_ids = (planned_ids & runner.errors.ids) - done_ids
    by_group: dict[str, dict[str, int]] = defaultdict(
        lambda: {"planned": 0, "done": 0, "failed": 0}
    )
    for item in plan.items:
        group = by_group[f"{item.record.source}:{item.mode}"]
        group["planned"] += 1
        group["done"] += item.id in done_ids
        group["failed"] += item.id in failed_ids
    reasons = Counter(runner.errors.entries[i]["reason"] for i in failed_ids)
    per_mode: dict[str, dict[str, float]] = {}
    for mode in sorted({entry["mode"] for entry in runner.samples.entries.values()}):
        usages = [e["usage"] for e in runner.samples.entries.values() if e["mode"] == mode]
        per_mode[mode] = {
            "samples": len(usages),
            "calls": _mean(u.get("calls", 0) for u in usages),
            "prompt_tokens": _mean(u.get("prompt_tokens", 0) for u in usages),
            "completion_tokens": _mean(u.get("completion_tokens", 0) for u in usages),
            "wall_s": _mean(u.get("wall_s", 0.0) for u in usages),
        }
    wall = stats.wall_time_s
    audit, by_flag = _audit_counts(runner.samples.entries.values())
    return {
        "updated_at": now_iso(),
        "model": model_info,
        "config": config.model_dump(mode="json"),
        "counts": {
            "planned": len(planned_ids),
            "done": len(done_ids),
            "failed": len(failed_ids),
            "pending": len(planned_ids) - len(done_ids) - len(failed_ids),
            "records_in_file": len(runner.samples),
            "duplicate_queries_skipped": plan.duplicates,
        },
        "by_source": dict(by_group),
        "failures_by_reason": dict(reasons),
        "per_sample": per_mode,
        "audit": audit,
        "audit_flags": by_flag,
        "sources": [
            {
                "name": source.name,
                "mode": mode,
                "origin": source.origin,
                "selected": len(source.records),
                "available": source.available,
            }
            for source, mode in plan.sources
        ],  # fmt: skip
        "this_run": {
            "skipped_done": stats.skipped_done,
            "retried_errors": stats.retried,
            "attempted": stats.attempted,
            "completed": stats.completed,
            "failed": stats.failed,
            "cancelled": stats.cancelled,
            "failures_by_reason": stats.failures_by_reason,
            "wall_time_s": wall,
            "samples_per_minute": round(60.0 * stats.completed / wall, 2) if wall > 0 else 0.0,
            "calls": stats.usage.calls,
            "prompt_tokens": stats.usage.prompt_tokens,
            "completion_tokens": stats.usage.completion_tokens,
            "completion_tokens_per_s": round(stats.usage.completion_tokens / wall, 1)
            if wall > 0
            else 0.0,
            "interrupted": stats.interrupted,
            "aborted": stats.aborted,
        },
        "notes": plan.notes + runner.open_notes,
    }


# --- the whole job --------------------------------------------------------------------


def check_output(output: Path, *, config: SimulationConfig, model_key: str) -> None:
    """Refuse to mix settings in one dataset: an output folder holds samples of one
    configuration and model, recorded in run.json by the first run. Samples without a
    readable run.json cannot be checked, so they are refused too, never appended to."""
    require_kind(output, "generate", "--output")
    run_file = output / RUN
    fix = "restore it, or use a new --output folder (one dataset, one configuration)"
    if not run_file.exists():
        stored = [name for name in (SAMPLES, ERRORS) if (output / name).exists()]
        if stored:
            raise MatrixAlignError(
                f"{output} holds {stored[0]} but no {RUN}, so the settings its samples "
                "were generated with cannot be checked.",
                hint=fix,
            )
        return
    previous = read_json_object(run_file, "The run file", hint=fix)
    if previous.get("kind") == "import":
        raise MatrixAlignError(
            f"{output} is a `matrix-align import` folder; generated samples do not go into it.",
            hint="give generate a new --output folder",
        )
    why = templates_mismatch(previous.get(TEMPLATES_KEY), config)
    if why:
        raise MatrixAlignError(
            f"{output} holds samples that {why}, so this run would generate every sample "
            "again beside them.",
            hint="use a new --output folder (one dataset, one configuration); `export` and "
            "`view` still work on this one",
        )
    old_config = previous.get("config")
    old_config = old_config if isinstance(old_config, dict) else {}
    new_config = config.model_dump(mode="json")
    changed = [
        k
        for k in sorted(set(old_config) | set(new_config))
        if old_config.get(k) != new_config.get(k)
    ]
    if previous.get("model_key") != model_key:
        changed.insert(0, f"model ({previous.get('model_key')} -> {model_key})")
    if changed:
        shown = ", ".join(
            c
            if c.startswith("model")
            else f"{c} ({_brief(old_config.get(c))} -> {_brief(new_config.get(c))})"
            for c in changed
        )
        raise MatrixAlignError(
            f"{output} holds samples generated with other settings: {shown}.",
            hint="use a new --output folder for new settings (one dataset, one configuration), "
            "or the same options to resume",
        )


def _brief(value: Any) -> str:
    """A setting's value as an error message shows it: template texts (``prompts``) by
    name, anything else as it is, cut at 80 characters."""
    if isinstance(value, dict):
        value = sorted(value)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class GenerateOptions:
    output: Path
    concurrency: int = 8
    abort_after: int = 25
    include_substeps: bool = False
    substeps: int | None = None  # at most N sub-step rows, a sample seeded by config.seed
    export: bool = True


async def generate(
    plan: Plan,
    model: ChatModel,
    config: SimulationConfig,
    options: GenerateOptions,
    *,
    model_info: dict[str, Any],
    on_progress: Callable[[ProgressState], None] | None = None,
    answerers: dict[str, Answerer] | None = None,
) -> dict[str, Any]:
    """Run the plan into ``options.output`` and return the summary (also in summary.json).

    Raises ``MatrixAlignError`` after writing the summary when the run was aborted because
    samples kept failing. Exports are written at the end of a run that was not aborted.
    """
    table = answerers or ANSWERERS
    output = Path(options.output)
    with DirectoryLock(output):
        # Checked under the lock: another run may have written run.json since the CLI did.
        check_output(output, config=config, model_key=str(model_info.get("key")))
        run_file = output / RUN
        # The folder's configuration (what check_output compares) and the provenance of the
        # latest run; written again at the end, when the server has named its model.
        created = read_json_object(run_file, "The run file") if run_file.exists() else {}
        run: dict[str, Any] = {
            "created_at": created.get("created_at") or now_iso(),
            "model_key": str(model_info.get("key")),
            "config": config.model_dump(mode="json"),
            TEMPLATES_KEY: config_templates_sha256(config),
        }
        sources = dataset_revisions(source for source, _ in plan.sources)

        def write_run() -> None:
            atomic_write_json(
                run_file,
                {**run, "provenance": provenance_record(model, datasets=sources, config=config)},
            )

        write_run()
        runner = BatchRunner(
            output,
            index=_sample_index,
            concurrency=options.concurrency,
            abort_after=options.abort_after,
            on_progress=on_progress,
        )
        runner.open()

        async def work(item: WorkItem) -> Outcome:
            return await table[item.mode](item, model, config)

        try:
            stats = await runner.run(plan.items, work)
        finally:
            summary = summarize(runner, plan, runner.stats, config=config, model_info=model_info)
            atomic_write_json(output / SUMMARY, summary)
            write_run()
            runner.close()
        if stats.aborted:
            raise RunFailed(
                f"Stopped early: {stats.aborted}.",
                hint="check the backend (server up? model loaded?), then rerun the same "
                "command: finished samples are kept and failed ones retried",
            )
        if options.export:
            export_into_summary(
                output,
                summary,
                include_substeps=options.include_substeps,
                substeps=options.substeps,
                seed=config.seed,
            )
    return summary


def export_into_summary(
    output: Path,
    summary: dict[str, Any],
    *,
    include_substeps: bool = False,
    substeps: int | None = None,
    seed: int = 0,
) -> None:
    """Write the run's exports and list them in its summary.json, with what the audit's
    default filter left out and, with sub-steps, how many qualified and were kept."""
    from matrix_align.data.export import export_run

    result = export_run(
        output, include_substeps=include_substeps, substeps=substeps, substep_seed=seed
    )
    summary["exports"] = {
        fmt: {"rows": result.rows[fmt], **{kind: str(path) for kind, path in paths.items()}}
        for fmt, paths in result.files.items()
    }
    summary["export_filter"] = result.filter_summary()
    summary["export_dropped_by_flag"] = result.dropped_by_flag
    if result.substeps is not None:
        summary["export_substeps"] = result.substeps
    atomic_write_json(Path(output) / SUMMARY, summary)
