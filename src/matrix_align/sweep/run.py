"""A sweep: one evaluation per cell of a grid of simulation settings, in one folder.

The folder is an ordinary ``evaluate`` folder. The base model's entry (``vanilla`` by
default) is answered once; then each cell is an ``evaluate`` run of MATRIX with that cell's
settings, tagged with the cell (entry ``matrix@roles=3,steps=2``), with the base entry as the
pairwise reference, so every cell is judged against the base model on the same items. No
answering or judging is done here: each cell is ``runner.evaluate``, which already skips
finished items and survives ``kill -9`` (records are appended and fsync-ed as they finish).

What the sweep adds is ``sweep.json``: the grid, and per cell the fingerprint of everything
that determines its answers and judgements (settings, items, model, judges, prompt
templates) and whether its last run finished without failures. A rerun skips the cells that
finished with the same fingerprint without even planning them, and runs the others, where
``evaluate`` resumes item by item. At the end the evaluate report is rebuilt once (the cells
skip it) and the sweep's own table and figure are drawn (``sweep.report``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate import runner
from matrix_align.evaluate.runner import EvalResult, ProgressFn
from matrix_align.evaluate.tasks import EvalSettings, JudgeSpec
from matrix_align.folders.store import DirectoryLock
from matrix_align.io import atomic_write_json
from matrix_align.llm.base import ChatModel
from matrix_align.provenance import prompt_templates_sha256
from matrix_align.sweep.grid import Axis, Cell, cells
from matrix_align.sweep.state import SWEEP_FILE, read_state

LOCK_FILE = ".sweep.lock"
SYSTEM = "matrix"  # the grid varies simulation settings: only MATRIX reads them


@dataclass
class SweepSpec:
    """A sweep: the grid, the base system, and the evaluate settings every cell shares
    (``template``: benchmarks, items, model, metrics...; its ``config`` is the simulation
    configuration the grid's values are applied to)."""

    axes: list[Axis]
    template: EvalSettings
    base: str | None = "vanilla"  # the base model's system, answered once; None: no base

    @property
    def output(self) -> Path:
        return self.template.output

    def cells(self) -> list[Cell]:
        return cells(self.axes, self.template.config)

    def base_settings(self) -> EvalSettings:
        assert self.base is not None
        return replace(self.template, systems=[self.base], tag=None, reference=self.base)

    def cell_settings(self, cell: Cell) -> EvalSettings:
        return replace(
            self.template, systems=[SYSTEM], tag=cell.tag, config=cell.config, reference=self.base
        )


@dataclass
class UnitOutcome:
    """What happened to the base or one cell in this run."""

    name: str  # "base" or the cell's tag
    entry: str
    skipped: bool = False
    result: EvalResult | None = None

    @property
    def failed(self) -> int:
        if self.result is None:
            return 0
        answers = self.result.answer_stats.failed if self.result.answer_stats else 0
        return answers + self.result.judge_stats.failed

    @property
    def finished(self) -> bool:
        """Nothing failed, nothing was interrupted, every judge gave verdicts."""
        if self.skipped:
            return True
        r = self.result
        if r is None:
            return False
        stats = [s for s in (r.answer_stats, r.judge_stats) if s is not None]
        interrupted = any(s.interrupted or s.cancelled or s.aborted for s in stats)
        return not self.failed and not interrupted and not r.silent_judges


@dataclass
class SweepResult:
    output: Path
    outcomes: list[UnitOutcome] = field(default_factory=list)
    report: Path | None = None
    sweep_report: Path | None = None
    figure: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def silent_judges(self) -> dict[str, list[str]]:
        silent: dict[str, list[str]] = {}
        for outcome in self.outcomes:
            if outcome.result is not None:
                for judge, metrics in outcome.result.silent_judges.items():
                    silent.setdefault(judge, [])
                    silent[judge] += [m for m in metrics if m not in silent[judge]]
        return silent


def fingerprint(settings: EvalSettings, judges: list[JudgeSpec]) -> str:
    """A hash of everything that decides a unit's answers and judgements, so a finished cell
    is skipped only when rerunning it would plan exactly the same work."""
    data = {
        "systems": settings.systems,
        "tag": settings.tag,
        "model": settings.model_key,
        "config": settings.config.model_dump(mode="json"),
        "options": settings.options.model_dump(mode="json"),
        "benchmarks": settings.benchmarks,
        "items": settings.items,
        "limit": settings.limit,
        "shuffle": settings.shuffle,
        "hub": settings.hub,
        "epochs": settings.epochs,
        "metrics": settings.metrics,
        "reference": settings.reference,
        "judge_prompts": settings.judge_prompts,
        "judges": [[j.key, j.judge.config.max_tokens, j.judge.config.seed] for j in judges],
        "templates": prompt_templates_sha256(),
    }
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _grid_record(spec: SweepSpec) -> list[dict[str, Any]]:
    return [{"key": a.key, "field": a.field, "values": list(a.values)} for a in spec.axes]


def prepare(spec: SweepSpec, n_judges: int) -> runner.Prepared:
    """Every check that needs no model, once for the whole sweep: names, items (loaded once
    and shared by every cell, so all cells answer exactly the same items), the folder, and
    a judge for every judged metric. Checked with the base and MATRIX as entries, so a
    pairwise judge counts as needed when there is a base."""
    grid = spec.cells()  # validates every cell's settings before any work
    if spec.base is not None and spec.base == SYSTEM:
        raise MatrixAlignError(
            "The base system cannot be matrix: the cells are MATRIX's entries.",
            hint="the base is the model without MATRIX, e.g. --base vanilla",
        )
    systems = [s for s in (spec.base, SYSTEM) if s is not None]
    probe = replace(spec.template, systems=systems, tag=grid[0].tag, reference=None)
    return runner.prepare(probe, n_judges)


async def run_sweep(
    spec: SweepSpec,
    model: ChatModel,
    judges: list[JudgeSpec],
    *,
    prepared: runner.Prepared | None = None,
    on_unit: Callable[[str, str, bool], None] | None = None,
    on_progress: ProgressFn | None = None,
) -> SweepResult:
    """Run the base entry, then every cell; skip those finished with the same fingerprint;
    then rebuild the report and draw the sweep's table and figure.

    ``on_unit(name, entry, skipped)`` is told before each unit starts (or is skipped)."""
    output = spec.output
    grid = spec.cells()
    prepared = prepared or prepare(spec, len(judges))
    lock = DirectoryLock(
        output, hint="wait for the other sweep to finish, or use another --output folder"
    )
    # runner.evaluate locks the folder's own .lock for each unit; the sweep holds a lock
    # of its own for its whole length, so two sweeps never interleave their cells.
    lock.path = Path(output) / LOCK_FILE
    result = SweepResult(output)
    with lock:
        state = read_state(output)
        state_cells: dict[str, Any] = dict(state.get("cells") or {})
        units: list[tuple[str, EvalSettings]] = []
        if spec.base is not None:
            units.append(("base", spec.base_settings()))
        units += [(cell.tag, spec.cell_settings(cell)) for cell in grid]
        state = {
            "grid": _grid_record(spec),
            "base": spec.base,
            "system": SYSTEM,
            "cells": state_cells,
        }
        for name, settings in units:
            entry = runner.entry_name(settings.systems[0], settings.tag)
            mark = fingerprint(settings, judges)
            known = state_cells.get(name) or {}
            outcome = UnitOutcome(name, entry)
            if known.get("fingerprint") == mark and known.get("finished"):
                outcome.skipped = True
                if on_unit:
                    on_unit(name, entry, True)
            else:
                if on_unit:
                    on_unit(name, entry, False)
                outcome.result = await runner.evaluate(
                    settings,
                    model,
                    judges,
                    prepared=prepared,
                    on_progress=on_progress,
                    report=False,
                )
                result.notes += [n for n in outcome.result.notes if n not in result.notes]
            result.outcomes.append(outcome)
            cell = next((c for c in grid if c.tag == name), None)
            state_cells[name] = {
                "entry": entry,
                "values": dict(cell.values) if cell else {},
                "fingerprint": mark,
                "finished": outcome.finished,
                "simulation": settings.config.model_dump(mode="json"),
            }
            atomic_write_json(output / SWEEP_FILE, state)
        from matrix_align.evaluate.report import write_report
        from matrix_align.sweep.report import write_sweep_report

        result.report = write_report(output)
        result.sweep_report, result.figure = write_sweep_report(output)
    return result
