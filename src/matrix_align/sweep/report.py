"""The sweep's table and figure, in the paper's layout: a metric against the base model as a
function of each grid setting (number of roles, number of interactions...).

Figures are pooled over the sweep's benchmarks (the per-benchmark tables are in the
evaluate report beside it) and computed from ``results.jsonl`` with the report's own rules:
the current answers only, judgements of the folder's current judge prompts only, unscored
verdicts counted apart. The metric drawn is the best one the run has:

1. ``win``: the cell's pairwise win rate against the base entry (first judge with pairwise
   verdicts; ties are their own share), Wilson interval over items;
2. ``harmless``: the share of answers to harmful items the first judge rates harmless
   (Wilson), the base as a dashed line;
3. ``refused``: the share of harmful items refused (the refusal-phrase detector, Wilson);
4. ``over-refused``: on a sweep of harmless items only, the share refused (lower is better).

Files: ``sweep.md`` (the table), ``sweep_metrics.json`` (every figure with n and interval)
and ``plots/sweep.png`` (needs matplotlib, the ``eval`` extra; without it, the table says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.evaluate.benchmarks import is_harmful
from matrix_align.evaluate.figures import Counts
from matrix_align.evaluate.judge_prompts import resolve
from matrix_align.evaluate.judges import REFUSAL_DETECTOR
from matrix_align.folders import PLOTS, read_run
from matrix_align.folders.results import current_answers, read_results
from matrix_align.io import atomic_write_json, atomic_write_text, temp_beside
from matrix_align.sweep.state import read_state

SWEEP_REPORT = "sweep.md"
SWEEP_METRICS = "sweep_metrics.json"
SWEEP_PLOT = "sweep.png"

METRIC_TITLES = {
    "win": "win rate against {base} (%)",
    "harmless": "harmless rate (%)",
    "refused": "harmful requests refused (%)",
    "over-refused": "harmless requests refused (%)",
}
_FLIP = {"win": "lose", "lose": "win"}


@dataclass
class EntryFigures:
    """One row of the table: the base entry or one cell, pooled over the benchmarks."""

    entry: str
    values: dict[str, str]  # the cell's grid values; empty for the base
    pairwise: Counts | None = None  # the entry's own side: win / tie / lose against the base
    harmless: Counts | None = None
    refused: Counts = field(default_factory=Counts)  # harmful items: refusal / compliance
    over_refused: Counts = field(default_factory=Counts)  # harmless items
    answers: int = 0
    calls: float = 0.0
    tokens: float = 0.0
    wall_s: float = 0.0

    def counts(self, metric: str) -> Counts | None:
        return {
            "win": self.pairwise,
            "harmless": self.harmless,
            "refused": self.refused,
            "over-refused": self.over_refused,
        }[metric]

    def share(self, metric: str) -> tuple[float | None, tuple[float, float] | None, int]:
        """(percent, 95% interval in percent, n scored) of the metric's label."""
        counts = self.counts(metric)
        if counts is None or not counts.scored:
            return None, None, 0
        label = LABELS[metric]
        return counts.percent(label), counts.wilson(label), counts.scored


LABELS = {"win": "win", "harmless": "harmless", "refused": "refusal", "over-refused": "refusal"}


def _add(counts: Counts, label: str | None, scored: bool, item: str) -> None:
    if scored and label is not None:
        counts.labels[label] += 1
        counts.items.append((item, label))
    else:
        counts.unscored += 1


def collect(output: Path) -> tuple[list[EntryFigures], dict[str, Any], str | None]:
    """The figures of the base and every cell of the folder's sweep, its state, and the
    judge whose verdicts they use (None: the refusal detector only)."""
    state = read_state(output)
    run = read_run(output)
    answers, judgements = read_results(output)
    answers = current_answers(answers)
    prompts = resolve({}, run)
    live = {a.id: a for a in answers}
    judgements = [
        j
        for j in judgements
        if all(i in live for i in j.answer_ids) and j.judge_prompt == prompts.of(j.metric)
    ]
    cells = state.get("cells") or {}
    rows: list[EntryFigures] = []
    base = state.get("base")
    if base:
        rows.append(EntryFigures(entry=str(base), values={}))
    for tag, values in _grid_cells(state):
        info = cells.get(tag) or {}
        rows.append(EntryFigures(entry=str(info.get("entry") or f"matrix@{tag}"), values=values))
    by_entry = {row.entry: row for row in rows}
    judges = [str(j) for j in run.get("judges") or []]
    pairwise_judges = [
        j
        for j in judges
        if any(v.metric == "pairwise" and v.judge == j and v.entry == base for v in judgements)
    ]
    judge = (
        pairwise_judges[0]
        if pairwise_judges
        else next((j for j in judges if any(v.judge == j for v in judgements)), None)
    )
    for answer in answers:
        row = by_entry.get(answer.entry)
        if row is not None:
            row.answers += 1
            row.calls += float(answer.usage.get("calls", 0))
            row.tokens += float(answer.usage.get("prompt_tokens", 0)) + float(
                answer.usage.get("completion_tokens", 0)
            )
            row.wall_s += float(answer.usage.get("wall_s", 0.0))
    for j in judgements:
        verdict = j.verdict
        if j.metric == "refusal" and j.judge == REFUSAL_DETECTOR:
            row = by_entry.get(j.entry)
            if row is not None:
                harmful = is_harmful(live[j.answer_ids[0]].source_record())
                _add(
                    row.refused if harmful else row.over_refused,
                    verdict.label,
                    verdict.scored,
                    j.item_id,
                )
        elif j.judge != judge:
            continue
        elif j.metric == "pairwise" and base and j.entry == base:
            row = by_entry.get(j.baseline or "")
            if row is not None:
                row.pairwise = row.pairwise or Counts()
                label = _FLIP.get(verdict.label or "", verdict.label)  # stored from base's side
                _add(row.pairwise, label, verdict.scored, j.item_id)
        elif j.metric == "harmlessness":
            row = by_entry.get(j.entry)
            if row is not None:
                row.harmless = row.harmless or Counts()
                _add(row.harmless, verdict.label, verdict.scored, j.item_id)
    return rows, state, judge


def _grid_cells(state: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """The latest grid's cells as (tag, values), first axis varying slowest (as the sweep
    runs them), including cells not started yet."""
    import itertools

    axes = state.get("grid") or []
    keys = [str(a["key"]) for a in axes]
    combos = itertools.product(*([str(v) for v in a.get("values") or []] for a in axes))
    out = []
    for combo in combos if axes else []:
        values = dict(zip(keys, combo, strict=True))
        out.append((",".join(f"{k}={v}" for k, v in values.items()), values))
    return out


def main_metric(rows: list[EntryFigures]) -> str | None:
    """The metric the figure draws: the first of win, harmless, refused, over-refused that
    any cell has."""
    cells = [r for r in rows if r.values]
    for metric in ("win", "harmless", "refused", "over-refused"):
        if any((c := r.counts(metric)) is not None and c.scored for r in cells):
            return metric
    return None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fig(row: EntryFigures, metric: str) -> str:
    value, interval, n = row.share(metric)
    if value is None:
        return "-"
    ci = f" [{interval[0]:.0f}-{interval[1]:.0f}]" if interval else ""
    return f"{value:.0f}{ci} (n={n})"


def _per_answer(row: EntryFigures, total: float, digits: int = 0) -> str:
    return f"{total / row.answers:.{digits}f}" if row.answers else "-"


def render(
    rows: list[EntryFigures],
    state: dict[str, Any],
    judge: str | None,
    metric: str | None,
    plot: str | None,
    note: str | None,
) -> str:
    keys = [str(a.get("key")) for a in state.get("grid") or []]
    base = state.get("base")
    lines = ["# Sweep", ""]
    grid = "; ".join(
        f"{a.get('key')} = {', '.join(str(v) for v in a.get('values') or [])}"
        for a in state.get("grid") or []
    )
    lines += [
        f"- Grid: {grid} ({len([r for r in rows if r.values])} cells of `matrix`)",
        f"- Base entry: {base or 'none'}",
        f"- Judge: {judge or 'none (the refusal-phrase detector only)'}",
        "- Pooled over the benchmarks of the run (per-benchmark tables: [report.md](report.md)).",
        "",
    ]
    if metric is not None:
        title = METRIC_TITLES[metric].format(base=base)
        lines += [f"The figure shows the {title}, 95% intervals as bars.", ""]
    if plot:
        lines += [f"![sweep]({plot})", ""]
    if note:
        lines += [f"> {note}", ""]
    has = {
        m: any(r.share(m)[0] is not None for r in rows)
        for m in ("win", "harmless", "refused", "over-refused")
    }
    header = [*keys, "entry"]
    if has["win"]:
        header += [f"win vs {base} % [95%]", "tie %", "lose %"]
    if has["harmless"]:
        header.append("harmless % [95%]")
    if has["refused"]:
        header.append("harmful refused % [95%]")
    if has["over-refused"]:
        header.append("harmless refused % [95%]")
    header += ["answers", "calls / answer", "tokens / answer", "s / answer"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.values.get(k, "-") if row.values else "base" for k in keys]
        cells.append(f"`{row.entry}`")
        if has["win"]:
            counts = row.pairwise
            cells.append(_fig(row, "win"))
            cells += [_pct(counts.percent(x)) if counts else "-" for x in ("tie", "lose")]
        for m in ("harmless", "refused", "over-refused"):
            if has[m]:
                cells.append(_fig(row, m))
        cells += [
            str(row.answers),
            _per_answer(row, row.calls, 1),
            _per_answer(row, row.tokens),
            _per_answer(row, row.wall_s, 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Win / tie / lose: each pair judged in both orders, a disagreement counted as a tie; "
        "intervals: Wilson score over items, as for the rates. Unscored "
        "verdicts are left out of every share.",
        "",
    ]
    return "\n".join(lines)


def metric_cells(rows: list[EntryFigures]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        for metric in ("win", "harmless", "refused", "over-refused"):
            counts = row.counts(metric)
            if counts is None or not (counts.scored or counts.unscored):
                continue
            value, interval, n = row.share(metric)
            out.append(
                {
                    "entry": row.entry,
                    "values": row.values,
                    "statistic": metric,
                    "n": n,
                    "unscored": counts.unscored,
                    "value": None if value is None else round(value / 100, 4),
                    "low": None if interval is None else round(interval[0] / 100, 4),
                    "high": None if interval is None else round(interval[1] / 100, 4),
                    "interval": "wilson",
                }
            )
        if row.answers:
            out.append(
                {
                    "entry": row.entry,
                    "values": row.values,
                    "statistic": "cost",
                    "n": row.answers,
                    "calls_per_answer": row.calls / row.answers,
                    "tokens_per_answer": row.tokens / row.answers,
                    "wall_s_per_answer": row.wall_s / row.answers,
                }
            )
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def draw(path: Path, rows: list[EntryFigures], state: dict[str, Any], metric: str) -> None:
    """One panel per grid setting: the metric against that setting's values, one line per
    combination of the other settings' values, the base entry as a dashed line."""
    from matplotlib.figure import Figure

    axes_info = state.get("grid") or []
    cells = [r for r in rows if r.values]
    base_row = next((r for r in rows if not r.values), None)
    fig = Figure(figsize=(4.6 * len(axes_info) + 0.8, 3.9))
    panels = fig.subplots(1, len(axes_info), squeeze=False)[0]
    for panel, axis in zip(panels, axes_info, strict=True):
        key = str(axis["key"])
        values = [str(v) for v in axis.get("values") or []]
        numeric = all(_number(v) is not None for v in values)
        position = {v: (_number(v) if numeric else i) for i, v in enumerate(values)}
        others = [str(a["key"]) for a in axes_info if a["key"] != key]
        lines: dict[tuple[str, ...], list[EntryFigures]] = {}
        for row in cells:
            lines.setdefault(tuple(row.values.get(k, "") for k in others), []).append(row)
        # Lines with equal values would hide each other: each is shifted a little sideways.
        span = (max(position.values()) - min(position.values())) if len(position) > 1 else 1
        shift = 0.012 * (span or 1)
        for index, (label_values, members) in enumerate(lines.items()):
            dodge = (index - (len(lines) - 1) / 2) * shift
            xs, ys, low, high = [], [], [], []
            for row in sorted(members, key=lambda r: position.get(r.values.get(key, ""), 0)):
                value, interval, _ = row.share(metric)
                if value is None or row.values.get(key) not in position:
                    continue
                xs.append(position[row.values[key]] + dodge)
                ys.append(value)
                low.append(value - interval[0] if interval else 0.0)
                high.append(interval[1] - value if interval else 0.0)
            if not xs:
                continue
            label = ", ".join(f"{k}={v}" for k, v in zip(others, label_values, strict=True))
            panel.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=label or "matrix")
        if base_row is not None and metric != "win":
            value, _, _ = base_row.share(metric)
            if value is not None:
                panel.axhline(
                    value, linestyle="--", color="#555555", label=f"{base_row.entry} (base)"
                )
        if metric == "win":
            panel.axhline(50, linestyle=":", color="#999999")
        if not numeric:
            panel.set_xticks(range(len(values)), values)
        else:
            panel.set_xticks([position[v] for v in values], values)
        panel.set_xlabel(
            f"{key}"
            + (
                " (number of roles)"
                if key == "roles"
                else " (interactions)"
                if key == "steps"
                else ""
            )
        )
        panel.set_ylim(-3, 103)
        panel.set_ylabel(METRIC_TITLES[metric].format(base=state.get("base")))
        panel.set_title(f"vs {key}", fontsize=10)
        panel.grid(alpha=0.3)
        handles, labels = panel.get_legend_handles_labels()
        if handles:
            panel.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)  # written whole, then renamed: a reader never sees half a PNG
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_sweep_report(output: Path | str) -> tuple[Path, Path | None]:
    """Rebuild sweep.md, sweep_metrics.json and plots/sweep.png from the folder."""
    output = Path(output)
    rows, state, judge = collect(output)
    metric = main_metric(rows)
    figure: Path | None = None
    note = None
    if metric is None:
        note = "No scored verdicts yet: nothing to draw."
    else:
        try:
            figure = output / PLOTS / SWEEP_PLOT
            draw(figure, rows, state, metric)
        except ImportError:
            figure = None
            note = (
                "The figure needs matplotlib: pip install 'matrix-align[eval]', then rerun "
                "the same sweep command (finished cells are skipped) to draw it."
            )
    plot = f"{PLOTS}/{SWEEP_PLOT}" if figure else None
    atomic_write_json(
        output / SWEEP_METRICS,
        {
            "metric": metric,
            "judge": judge,
            "base": state.get("base"),
            "grid": state.get("grid"),
            "level": 0.95,
            "cells": metric_cells(rows),
        },
    )
    path = atomic_write_text(output / SWEEP_REPORT, render(rows, state, judge, metric, plot, note))
    return path, figure
