"""The report's bar plots (``plots/*.png``; matplotlib, the ``eval`` extra): each metric's
own (``Metric.plot``), those of a model-judged metric for the first judge, then the cost of
an answer per entry."""

from __future__ import annotations

from pathlib import Path

from matrix_align.evaluate.figures import Tables, grouped_bars
from matrix_align.evaluate.metrics import by_rank
from matrix_align.folders import PLOTS


def write_plots(tables: Tables, folder: Path) -> list[str]:
    """PNG bar plots per benchmark; returns their paths relative to the report."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    judge = tables.judges[0] if tables.judges else None
    ranked = by_rank()
    if judge:
        for metric in (m for m in ranked if m.model_judged):
            written += metric.plot(tables, folder, judge)
    for metric in (m for m in ranked if not m.model_judged):
        written += metric.plot(tables, folder, None)
    calls = {
        (e, "calls per response"): c.per_response(c.usage.calls) or 0.0
        for e, c in tables.cost.items()
        if c.responses
    }
    if calls:
        grouped_bars(
            folder / "cost.png",
            "Model calls per response",
            "calls",
            ["calls per response"],
            tables.entries,
            calls,
        )
        written.append("cost.png")
    return [f"{PLOTS}/{name}" for name in written]
