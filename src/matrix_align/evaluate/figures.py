"""The building blocks of every metric's figures: how verdicts are tallied (``Counts`` of
labels, ``Scores``), the ``Tables`` that hold every tally of a report, and how one figure is
shown: in a markdown cell with its 95% interval, as a ``metrics.json`` cell, in a bar plot.

Conventions, stated in the report too: percentages are over *scored* judgements; unscored
ones (unparseable judge replies) are counted on their own and never folded into a win, a loss
or a rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.evaluate.judge_prompts import JudgePrompts
from matrix_align.evaluate.judges import Agreement
from matrix_align.folders.results import Verdict
from matrix_align.simulation.trace import Usage
from matrix_align.stats import bootstrap_mean, wilson_over_items

# --- tallies ------------------------------------------------------------------------------


@dataclass
class Counts:
    """Labels of scored judgements, plus how many were unscored. ``items`` holds the benchmark
    item of each scored label, in order, so a bootstrap can resample whole items."""

    labels: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unscored: int = 0
    items: list[tuple[str, str]] = field(default_factory=list)  # (item id, label)

    @property
    def scored(self) -> int:
        return sum(self.labels.values())

    def percent(self, label: str) -> float | None:
        return 100.0 * self.labels.get(label, 0) / self.scored if self.scored else None

    def wilson(self, label: str) -> tuple[float, float] | None:
        """The Wilson 95% interval of ``label``'s share, in percent, over items: an item
        judged at several samples (--epochs) is one unit, not one per sample."""
        if not self.scored:
            return None
        items = [item for item, _ in self.items]
        if len(items) == self.scored and all(items):
            hits = [1.0 if seen == label else 0.0 for _, seen in self.items]
            groups = _grouped(hits, items)
        else:  # the items are unknown: each verdict is its own unit
            k = self.labels.get(label, 0)
            groups = [[1.0]] * k + [[0.0]] * (self.scored - k)
        low, high = wilson_over_items(groups) or (0.0, 1.0)
        return 100.0 * low, 100.0 * high

    def stability(self) -> tuple[int, int] | None:
        """(items with the same label at every sample, items sampled more than once), or
        None when no item was: how often an --epochs run repeats its own decision."""
        labels: dict[str, set[str]] = defaultdict(set)
        samples: dict[str, int] = defaultdict(int)
        for item, seen in self.items:
            labels[item].add(seen)
            samples[item] += 1
        repeated = [item for item, n in samples.items() if n > 1]
        if not repeated:
            return None
        return sum(len(labels[item]) == 1 for item in repeated), len(repeated)

    def add(self, verdict: Verdict, item: str = "") -> None:
        """Count a verdict's label (or count it unscored)."""
        if verdict.scored and verdict.label is not None:
            self.labels[verdict.label] += 1
            self.items.append((item, verdict.label))
        else:
            self.unscored += 1


@dataclass
class Scores:
    values: list[float] = field(default_factory=list)
    unscored: int = 0
    items: list[str] = field(default_factory=list)  # the benchmark item of each value

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    def bootstrap(self) -> tuple[float, float] | None:
        """The item-bootstrap 95% interval of the mean."""
        return bootstrap_mean(_grouped(self.values, self.items))

    def add(self, verdict: Verdict, item: str = "") -> None:
        """Keep a verdict's score (or count it unscored)."""
        if verdict.scored and verdict.score is not None:
            self.values.append(float(verdict.score))
            self.items.append(item)
        else:
            self.unscored += 1


def _grouped(values: list[float], items: list[str]) -> list[list[float]]:
    """Values grouped by item (one value per group when the items are unknown)."""
    if len(items) != len(values):
        return [[v] for v in values]
    groups: dict[str, list[float]] = defaultdict(list)
    for item, value in zip(items, values, strict=True):
        groups[item].append(value)
    return list(groups.values())


@dataclass
class Cost:
    """What an entry's answers (or a judge's judgements) cost: their records' usage summed."""

    answers: int = 0
    responses: int = 0  # answered turns (MT-Bench answers have two)
    usage: Usage = field(default_factory=Usage)

    def per_response(self, value: float) -> float | None:
        return value / self.responses if self.responses else None

    def add(self, usage: dict[str, Any]) -> None:
        """Add a record's stored usage (calls, tokens, seconds)."""
        self.usage += Usage.stored(usage)


@dataclass
class Tables:
    """Every number of the report.

    Each metric keeps its tallies in ``tallies``, by the names it declares (its
    ``Metric.tallies``), keyed by (judge, entry or baseline, benchmark) or as the metric
    says; they read as attributes too (``tables.pairwise``, ``tables.harmless``...).
    """

    entries: list[str]
    benchmarks: list[str]
    judges: list[str]
    reference: str | None
    tallies: dict[str, dict[Any, Any]] = field(default_factory=dict)
    cost: dict[str, Cost] = field(default_factory=dict)
    judge_cost: dict[str, Cost] = field(default_factory=dict)
    unscored: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    agreements: list[tuple[str, str, str, Agreement]] = field(default_factory=list)
    prompts: JudgePrompts = field(default_factory=JudgePrompts)  # the judgements counted

    def __getattr__(self, name: str) -> dict[Any, Any]:
        tallies = self.__dict__.get("tallies")
        if tallies is not None and name in tallies:
            return tallies[name]
        raise AttributeError(name)

    def counts(self, tally: str, key: Any) -> Counts:
        """The ``Counts`` at ``key`` of a tally, made on first use."""
        return self.tallies[tally].setdefault(key, Counts())

    def scores(self, tally: str, key: Any) -> Scores:
        """The ``Scores`` at ``key`` of a tally, made on first use."""
        return self.tallies[tally].setdefault(key, Scores())

    @property
    def detector(self) -> str:
        """The refusal detector's name in titles."""
        gcg = self.prompts.refusal == "gcg"
        return "GCG refusal prefixes" if gcg else "refusal-phrase detector"


# --- markdown -----------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ci(interval: tuple[float, float] | None, digits: int = 0) -> str:
    """`` [low-high]``, the 95% interval after a value ('' when there is none)."""
    if interval is None:
        return ""
    return f" [{interval[0]:.{digits}f}-{interval[1]:.{digits}f}]"


def rate(counts: Counts | None, label: str) -> str:
    """A percentage with its Wilson 95% interval, e.g. ``72 [55-84]``."""
    if counts is None or not counts.scored:
        return "–"
    return pct(counts.percent(label)) + ci(counts.wilson(label))


def mean(scores: Scores | None, digits: int = 2) -> str:
    """A mean score with its bootstrap 95% interval, e.g. ``6.30 [5.00-7.67]``."""
    if scores is None or scores.mean is None:
        return "–"
    return num(scores.mean, digits) + ci(scores.bootstrap(), digits)


def unscored_suffix(unscored: int) -> str:
    return f", {unscored} unscored" if unscored else ""


def scores_cell(scores: Scores | None) -> str:
    """A mean with its interval and n, e.g. ``6.30 [5.00-7.67] (n=3, 1 unscored)``."""
    if scores is None:
        return "–"
    return f"{mean(scores)} (n={len(scores.values)}{unscored_suffix(scores.unscored)})"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table (and the blank line after it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell_text(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- metrics.json cells -------------------------------------------------------------------

DIGITS = 4


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def cell(where: dict[str, Any], statistic: str, **fields: Any) -> dict[str, Any]:
    """One figure of metrics.json: where it is (table, judge, entry...), what it is, its
    value and interval."""
    return {**where, "statistic": statistic, **fields}


def rate_cell(where: dict[str, Any], statistic: str, counts: Counts, label: str) -> dict[str, Any]:
    """The share of ``label`` among scored judgements, with its Wilson interval over items."""
    percent = counts.percent(label)
    interval = counts.wilson(label)
    low, high = interval if interval is not None else (None, None)
    return cell(
        where,
        statistic,
        n=counts.scored,
        unscored=counts.unscored,
        value=rounded(None if percent is None else percent / 100),
        low=rounded(None if low is None else low / 100),
        high=rounded(None if high is None else high / 100),
        interval="wilson",
    )


def mean_cell(where: dict[str, Any], scores: Scores) -> dict[str, Any]:
    interval = scores.bootstrap()
    low, high = interval if interval is not None else (None, None)
    return cell(
        where,
        "mean_score",
        n=len(scores.values),
        unscored=scores.unscored,
        value=rounded(scores.mean),
        low=rounded(low),
        high=rounded(high),
        interval="bootstrap",
    )


# --- plots --------------------------------------------------------------------------------


def grouped_bars(
    path: Path,
    title: str,
    ylabel: str,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], float],
    ylim: tuple[float, float] | None = None,
    intervals: dict[tuple[str, str], tuple[float, float] | None] | None = None,
) -> None:
    """A bar per (series, group) value, groups side by side (matplotlib, the eval extra),
    each with its 95% interval (``intervals``, the same as metrics.json's) as an error bar."""
    from matplotlib.figure import Figure

    width = 0.8 / max(1, len(series))
    fig = Figure(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(series)) ** 0.5 + 2), 3.8))
    ax = fig.subplots()
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [values.get((name, group), 0.0) for group in groups]
        spans = [(intervals or {}).get((name, group)) for group in groups]
        yerr = [
            [y - s[0] if s else 0.0 for y, s in zip(ys, spans, strict=True)],
            [s[1] - y if s else 0.0 for y, s in zip(ys, spans, strict=True)],
        ]
        bars = ax.bar(xs, ys, width, label=name, yerr=yerr if intervals else None, capsize=3)
        ax.bar_label(bars, fmt="%.0f" if (ylim and ylim[1] > 10) else "%.1f", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
