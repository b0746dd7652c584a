"""``metrics.json``: every figure of an evaluation report as data, each with its n and 95%
interval, so scripts and plots read numbers instead of parsing markdown.

One cell per figure, flat, so a reader filters with a list comprehension (or
``pandas.DataFrame(cells)``). Fields:

- ``table``: pairwise, harmless, refusal, xstest, strongreject, helpfulness, mt-bench,
  cost or agreement; ``statistic``: what the value is (win, harmless_rate, mean_score...);
- ``judge``, ``entry``, ``baseline`` (pairwise), ``benchmark``, ``turn`` (MT-Bench; 0 is
  every turn together), ``subset`` (XSTest's safe/unsafe);
- ``n`` (scored judgements), ``unscored``, ``value``, ``low``, ``high`` and ``interval``
  (wilson, bootstrap, or null where none applies). Rates are fractions in [0, 1] (the
  report shows them in percent); scores are on their metric's scale.

Everything comes from the ``Tables`` the report renders, so the file and the report never
disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matrix_align.evaluate.judges import REFUSAL_DETECTOR
from matrix_align.evaluate.report import Counts, Scores, Tables, mt_bench_all_turns
from matrix_align.io import atomic_write_json
from matrix_align.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, wilson

METRICS_FILE = "metrics.json"
DIGITS = 4


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def _cell(where: dict[str, Any], statistic: str, **fields: Any) -> dict[str, Any]:
    return {**where, "statistic": statistic, **fields}


def rate_cell(
    where: dict[str, Any], statistic: str, counts: Counts, label: str, *, bootstrap: bool = False
) -> dict[str, Any]:
    """The share of ``label`` among scored judgements: Wilson interval, or the item bootstrap
    (pairwise, where an item sampled K times is one unit, not K)."""
    percent = counts.percent(label)
    interval = counts.bootstrap(label) if bootstrap else counts.wilson(label)
    low, high = interval if interval is not None else (None, None)
    return _cell(
        where,
        statistic,
        n=counts.scored,
        unscored=counts.unscored,
        value=_round(None if percent is None else percent / 100),
        low=_round(None if low is None else low / 100),
        high=_round(None if high is None else high / 100),
        interval="bootstrap" if bootstrap else "wilson",
    )


def mean_cell(where: dict[str, Any], scores: Scores) -> dict[str, Any]:
    interval = scores.bootstrap()
    low, high = interval if interval is not None else (None, None)
    return _cell(
        where,
        "mean_score",
        n=len(scores.values),
        unscored=scores.unscored,
        value=_round(scores.mean),
        low=_round(low),
        high=_round(high),
        interval="bootstrap",
    )


def metric_cells(tables: Tables) -> list[dict[str, Any]]:
    """Every cell of the report's tables (see the module docstring)."""
    t = tables
    cells: list[dict[str, Any]] = []
    for (judge, baseline, bench), counts in t.pairwise.items():
        where = {"table": "pairwise", "judge": judge, "entry": t.reference,
                 "baseline": baseline, "benchmark": bench}  # fmt: skip
        for label in ("win", "tie", "lose"):
            cells.append(rate_cell(where, label, counts, label, bootstrap=True))
    for (judge, entry, bench), counts in t.harmless.items():
        where = {"table": "harmless", "judge": judge, "entry": entry, "benchmark": bench}
        cells.append(rate_cell(where, "harmless_rate", counts, "harmless"))
        if (scores := t.harmless_scores.get((judge, entry, bench))) is not None:
            cells.append(mean_cell(where, scores))
    for (entry, bench), counts in t.refusal.items():
        where = {"table": "refusal", "judge": REFUSAL_DETECTOR, "entry": entry, "benchmark": bench}
        cells.append(rate_cell(where, "refusal_rate", counts, "refusal"))
    for (entry, subset), counts in t.xstest.items():
        where = {"table": "xstest", "judge": REFUSAL_DETECTOR, "entry": entry,
                 "benchmark": "xstest", "subset": subset}  # fmt: skip
        cells.append(rate_cell(where, "refusal_rate", counts, "refusal"))
    for (judge, entry, bench), scores in t.strongreject.items():
        where = {"table": "strongreject", "judge": judge, "entry": entry, "benchmark": bench}
        cells.append(mean_cell(where, scores))
        if (counts := t.strongreject_refusal.get((judge, entry, bench))) is not None:
            cells.append(rate_cell(where, "refusal_rate", counts, "refusal"))
    for (judge, entry, bench), scores in t.helpfulness.items():
        where = {"table": "helpfulness", "judge": judge, "entry": entry, "benchmark": bench}
        cells.append(mean_cell(where, scores))
    per_cell: dict[tuple[str, str, str], dict[int, Scores]] = {}
    for (judge, entry, bench, turn), scores in t.mt_bench.items():
        per_cell.setdefault((judge, entry, bench), {})[turn] = scores
    for (judge, entry, bench), per_turn in per_cell.items():
        where = {"table": "mt-bench", "judge": judge, "entry": entry, "benchmark": bench}
        for turn in sorted(per_turn):
            cells.append(mean_cell({**where, "turn": turn}, per_turn[turn]))
        if len(per_turn) > 1:
            cells.append(mean_cell({**where, "turn": 0}, mt_bench_all_turns(per_turn)))
    for entry, cost in t.cost.items():
        where = {"table": "cost", "entry": entry}
        for name in ("calls", "prompt_tokens", "completion_tokens", "wall_s"):
            value = cost.per_response(getattr(cost, name))
            cells.append(
                _cell(where, f"{name}_per_response", n=cost.responses, unscored=0,
                      value=_round(value), low=None, high=None, interval=None)
            )  # fmt: skip
    for metric, first, second, agree in t.agreements:
        where = {"table": "agreement", "metric": metric, "judge": first, "judge_2": second}
        low, high = (None, None)
        if agree.percent is not None and agree.n:
            low, high = wilson(round(agree.percent * agree.n / 100), agree.n)
        value = None if agree.percent is None else agree.percent / 100
        cells.append(
            _cell(where, "agreement", n=agree.n, unscored=0, value=_round(value),
                  low=_round(low), high=_round(high), interval="wilson", kappa=agree.kappa)
        )  # fmt: skip
    return cells


def metrics_document(tables: Tables) -> dict[str, Any]:
    return {
        "level": 0.95,
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "unit": "item"},
        "entries": tables.entries,
        "benchmarks": tables.benchmarks,
        "judges": tables.judges,
        "reference": tables.reference,
        "judge_prompts": tables.prompts.as_dict(),  # which prompts the cells come from
        "cells": metric_cells(tables),
    }


def write_metrics(output: Path, tables: Tables) -> Path:
    return atomic_write_json(Path(output) / METRICS_FILE, metrics_document(tables))
