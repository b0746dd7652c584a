"""The report of an evaluation folder: paper-style tables, bar plots, answers side by side.

Everything here is computed from ``results.jsonl`` alone (``compute_tables`` is a pure
function of the stored answers and judgements), so a report can be rebuilt at any time,
after a rejudge or by hand, and tests can check every number against known judgements.
Each metric tallies, renders and plots its own figures (``evaluate/metrics.py``); this
package puts them together, by concern:

- ``compute``: the ``Tables`` (every tally, cost, unscored replies, agreement between judges);
- ``markdown``: ``report.md`` and ``answers.md`` (every item with each entry's answers and
  verdicts);
- ``plots``: ``plots/*.png`` (needs matplotlib, the ``eval`` extra; without it the report says
  how to get the plots);
- ``metrics_json``: ``metrics.json``, every cell with its n and 95% interval.

Conventions, stated in the report too: percentages are over *scored* judgements; unscored
ones (unparseable judge replies) are counted in their own column and never folded into a
win, a loss or a rate.
"""

from __future__ import annotations

from pathlib import Path

from matrix_align.evaluate.figures import Cost, Counts, Scores, Tables
from matrix_align.evaluate.judge_prompts import resolve
from matrix_align.evaluate.report.compute import compute_tables, judge_agreements
from matrix_align.evaluate.report.markdown import render_answers, render_report
from matrix_align.evaluate.report.metrics_json import write_metrics
from matrix_align.evaluate.report.plots import write_plots
from matrix_align.folders import ANSWERS, PLOTS, REPORT, read_run
from matrix_align.folders.results import current_answers, read_results
from matrix_align.io import atomic_write_text

__all__ = [
    "Cost",
    "Counts",
    "Scores",
    "Tables",
    "compute_tables",
    "judge_agreements",
    "render_answers",
    "render_report",
    "write_plots",
    "write_report",
]


def write_report(output: Path | str) -> Path:
    """Rebuild report.md, metrics.json, answers.md and the plots of an evaluation folder."""
    output = Path(output)
    run = read_run(output)
    answers, judgements = read_results(output)
    answers = current_answers(answers)
    tables = compute_tables(
        answers,
        judgements,
        reference=run.get("reference"),
        judge_order=run.get("judges") or [],
        entry_order=run.get("entries") or [],
        prompts=resolve({}, run),
    )
    live = {a.id for a in answers}
    judgements = [
        j
        for j in judgements
        if all(i in live for i in j.answer_ids) and j.judge_prompt == tables.prompts.of(j.metric)
    ]
    notes = list(run.get("notes") or [])
    try:
        plots = write_plots(tables, output / PLOTS)
    except ImportError:
        plots = []
        notes.append(
            "Plots need matplotlib: pip install 'matrix-align[eval]', then rerun "
            "`matrix-align evaluate --rejudge` on this folder to redraw them."
        )
    write_metrics(output, tables)
    atomic_write_text(output / ANSWERS, render_answers(answers, judgements, tables))
    text = render_report(tables, run, plots, notes)
    # The section `humaneval import` writes (matrix_align.humaneval.tally), kept in every rebuild.
    human = output / "humaneval.md"
    if human.is_file():
        text = text.rstrip("\n") + "\n\n" + human.read_text("utf-8")
    return atomic_write_text(output / REPORT, text)
