"""``metrics.json``: every figure of an evaluation report as data, each with its n and 95%
interval, so scripts and plots read numbers instead of parsing markdown.

One cell per figure, flat, so a reader filters with a list comprehension (or
``pandas.DataFrame(cells)``). Fields:

- ``table``: pairwise, harmless, refusal, xstest, strongreject, helpfulness, mt-bench (each
  metric's own, ``Metric.cells``), cost or agreement; ``statistic``: what the value is (win,
  harmless_rate, mean_score...);
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

from matrix_align.evaluate.figures import Tables, cell, rounded
from matrix_align.evaluate.metrics import by_rank
from matrix_align.folders import METRICS_JSON
from matrix_align.io import atomic_write_json
from matrix_align.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, wilson


def metric_cells(tables: Tables) -> list[dict[str, Any]]:
    """Every cell of the report's tables (see the module docstring)."""
    t = tables
    cells: list[dict[str, Any]] = []
    for metric in by_rank():
        cells += metric.cells(t)
    for entry, cost in t.cost.items():
        where = {"table": "cost", "entry": entry}
        for name in ("calls", "prompt_tokens", "completion_tokens", "wall_s"):
            value = cost.per_response(getattr(cost.usage, name))
            cells.append(
                cell(where, f"{name}_per_response", n=cost.responses, unscored=0,
                     value=rounded(value), low=None, high=None, interval=None)
            )  # fmt: skip
    for metric, first, second, agree in t.agreements:
        where = {"table": "agreement", "metric": metric, "judge": first, "judge_2": second}
        low, high = (None, None)
        if agree.percent is not None and agree.n:
            low, high = wilson(round(agree.percent * agree.n / 100), agree.n)
        value = None if agree.percent is None else agree.percent / 100
        cells.append(
            cell(where, "agreement", n=agree.n, unscored=0, value=rounded(value),
                 low=rounded(low), high=rounded(high), interval="wilson", kappa=agree.kappa)
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
    return atomic_write_json(Path(output) / METRICS_JSON, metrics_document(tables))
