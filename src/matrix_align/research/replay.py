"""Replay an evaluation folder's MATRIX scenes with other late-stage settings.

Each stored matrix answer's scene is kept and only its late stages (consequence, summary of
the first answer, final answer) are run again (``simulation.replay``), e.g. with another
``final_prompt``. The results join the folder as answers of a new entry
(``matrix@final-authors``), same items, same first answers, so two final-answer designs
are compared on exactly the same scenes in every table. Resumable like the rest of evaluate
(``BatchRunner``; a replayed answer's id is derived from the original answer's id, the
overrides and the model), so rerunning adds nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from matrix_align.batch import Outcome, RunStats, now_iso
from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.runner import ProgressFn, check_entries, run_phase
from matrix_align.folders import RESULTS, RUN, read_run
from matrix_align.folders.records import audit_answer, failure_fields, id_settings, sample_id
from matrix_align.folders.results import AnswerRecord, current_answers, read_results
from matrix_align.folders.store import DirectoryLock
from matrix_align.io import atomic_write_json
from matrix_align.llm.base import ChatModel
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.replay import REPLAYABLE, replay
from matrix_align.simulation.scene import LATE_STAGES
from matrix_align.simulation.trace import SceneTrace, Usage

_SHORT = {
    "final_prompt": "final",
    "keep_refusals": "keep",
    "check_alternative": "alt-check",
    "harm_votes": "votes",
    "final_max_tokens": "final-tokens",
    "temperature": "t",
}


def replay_tag(overrides: dict[str, Any]) -> str:
    """The tag naming a replay's entry, e.g. ``final-authors`` or ``final-system+seed-1``."""
    return "+".join(f"{_SHORT.get(k, k)}-{overrides[k]}" for k in REPLAYABLE if k in overrides)


def check_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides without None values, validated before any model call."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(REPLAYABLE))
    if unknown:
        raise MatrixAlignError(
            f"Replay cannot change {', '.join(unknown)}: only the late stages are re-run.",
            hint=f"replayable settings: {', '.join(REPLAYABLE)}",
        )
    if not overrides:
        raise MatrixAlignError(
            "Nothing to replay with: no setting changed.",
            hint=f"give one of: {', '.join(REPLAYABLE)} (e.g. --final-prompt authors)",
        )
    SimulationConfig.build(**overrides)  # a bad value fails here, not once per scene
    return overrides


@dataclass
class ReplayTask:
    id: str
    entry: str
    answer: AnswerRecord  # the stored matrix answer, traces included

    def error_fields(self) -> dict[str, Any]:
        return failure_fields(id=self.id, source=self.answer.benchmark,
                              mode=f"replay:{self.entry}", source_id=self.answer.item_id,
                              query=self.answer.prompt)  # fmt: skip


@dataclass
class ReplayResult:
    entry: str
    overrides: dict[str, Any]  # the settings that changed, None values dropped
    stats: RunStats
    notes: list[str]


def plan_replays(
    answers: list[AnswerRecord],
    overrides: dict[str, Any],
    model_key: str,
    *,
    source_entry: str,
    entry: str,
) -> tuple[list[ReplayTask], list[str]]:
    """A task per current answer of ``source_entry`` that holds one scene; notes for those
    that cannot be replayed (multi-turn answers, answers without a scene)."""
    tasks: list[ReplayTask] = []
    skipped = 0
    # The templates its settings render: a variant's (the harm votes', the paper final
    # prompt's) edit makes a new answer, not a skipped one.
    settings = id_settings(overrides, SimulationConfig.build(**overrides))
    for answer in answers:
        if answer.entry != source_entry:
            continue
        if answer.followups or len(answer.traces) != 1:
            skipped += 1
            continue
        replay_id = sample_id(
            query=answer.id,
            source=f"{answer.benchmark}|{answer.item_id}",
            mode="replay",
            config=settings,
            model_key=model_key,
        )
        tasks.append(ReplayTask(replay_id, entry, answer))
    notes = [f"{skipped} answer(s) of {source_entry} skipped: not one scene"] if skipped else []
    return tasks, notes


async def replay_task(
    task: ReplayTask, model: ChatModel, overrides: dict[str, Any], model_key: str
) -> Outcome:
    """One stored scene with its late stages re-run, stored as an answer of the new entry."""
    source = task.answer
    started = time.perf_counter()
    trace = await replay(
        SceneTrace.model_validate(source.traces[0]), model, source=source.id, **overrides
    )
    audit_answer(trace, source.source_record())
    late = [c for c in trace.calls if c.stage in LATE_STAGES]
    # What this replay cost; the record's usage is the whole answer's: the kept scene plus
    # the new calls.
    usage = replace(Usage.of_calls(late), wall_s=round(time.perf_counter() - started, 3))
    record = source.model_copy(
        update={
            "id": task.id,
            "entry": task.entry,
            "model": model_key,
            "answer": trace.final_response,
            "initial_response": trace.initial_response,
            "usage": {**trace.totals.usage.as_dict(), "turns": 1, "replay_wall_s": usage.wall_s},
            "settings": {
                **source.settings,
                "simulation": trace.config,
                "replay": {"from": source.id, "entry": source.entry, **overrides},
            },
            "traces": [trace.model_dump(mode="json")],
            "created_at": now_iso(),
        }
    )
    return Outcome(record=record, usage=usage)


async def replay_folder(
    output: Path | str,
    model: ChatModel,
    model_key: str,
    overrides: dict[str, Any],
    *,
    source_entry: str = "matrix",
    tag: str | None = None,
    concurrency: int = 8,
    on_progress: ProgressFn | None = None,
) -> ReplayResult:
    """Replay every current answer of ``source_entry`` in the evaluation folder ``output``
    with ``overrides`` (see ``REPLAYABLE``) and append the results as the entry
    ``matrix@TAG`` (default tag: from the overrides, e.g. ``final-authors``)."""
    output = Path(output)
    overrides = check_overrides(overrides)
    if not (output / RESULTS).exists():
        raise MatrixAlignError(
            f"{output} is not an evaluation folder (no {RESULTS}).",
            hint="pass the --output folder of an earlier run that has matrix answers",
        )
    base, _, base_tag = source_entry.partition("@")
    entry = f"{base}@{tag or '+'.join(filter(None, [base_tag, replay_tag(overrides)]))}"
    with DirectoryLock(output):
        # No template guard here: a replay exists to re-run the late stages of stored scenes
        # under changed final-step prompts. Its ids hash the current templates, so a replay
        # after another template change is a new answer, never a stale one.
        stored, _ = read_results(output, with_traces=True)
        answers = current_answers(stored)
        if not any(a.entry == source_entry and a.system == "matrix" for a in answers):
            raise MatrixAlignError(
                f"{output} holds no matrix answers under the entry {source_entry!r}.",
                hint="run the matrix system there first, or name the entry to replay",
            )
        tasks, notes = plan_replays(
            answers, overrides, model_key, source_entry=source_entry, entry=entry
        )
        check_entries(stored, [entry], model_key)
        run = read_run(output)
        run["updated_at"] = now_iso()
        run["entries"] = list(dict.fromkeys([*(run.get("entries") or []), entry]))
        run["models"] = {**(run.get("models") or {}), entry: model_key}
        atomic_write_json(output / RUN, run)

        async def work(task: ReplayTask) -> Outcome:
            return await replay_task(task, model, overrides, model_key)

        stats, open_notes = await run_phase(
            output, tasks, work, concurrency=concurrency, phase="answers", on_progress=on_progress
        )
    if stats.aborted:
        raise MatrixAlignError(
            f"Replay stopped early: {stats.aborted}.",
            hint="check the backend, then rerun the same command: finished replays are kept",
        )
    return ReplayResult(entry, overrides, stats, notes + open_notes)
