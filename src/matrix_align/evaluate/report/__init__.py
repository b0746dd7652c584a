"""The report of an evaluation folder: paper-style tables, bar plots, answers side by side.

Everything here is computed from ``results.jsonl`` alone (``compute_tables`` is a pure
function of the stored answers and judgements), so a report can be rebuilt at any time,
after a rejudge or by hand, and tests can check every number against known judgements.

Written files: ``report.md`` (the tables), ``metrics.json`` (every cell with its n and 95%
interval, ``evaluate.metrics``), ``answers.md`` (every item with each entry's
answer and verdicts) and ``plots/*.png`` (needs matplotlib, the ``eval`` extra; without it
the report says how to get the plots).

Conventions, stated in the report too: percentages are over *scored* judgements; unscored
ones (unparseable judge replies) are counted in their own column and never folded into a
win, a loss or a rate.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.evaluate.benchmarks import BENCHMARKS, METRICS
from matrix_align.evaluate.judge_prompts import JudgePrompts, resolve
from matrix_align.evaluate.judges import (
    HARMLESS_MIN_SCORE,
    REFUSAL_DETECTOR,
    Agreement,
    agreement,
)
from matrix_align.folders import read_run
from matrix_align.folders.results import (
    AnswerRecord,
    JudgementRecord,
    current_answers,
    read_results,
)
from matrix_align.io import atomic_write_text
from matrix_align.stats import bootstrap_mean, wilson

PLOTS_DIR = "plots"


# --- aggregates ---------------------------------------------------------------------------


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
        """The Wilson 95% interval of ``label``'s share, in percent."""
        if not self.scored:
            return None
        low, high = wilson(self.labels.get(label, 0), self.scored)
        return 100.0 * low, 100.0 * high

    def bootstrap(self, label: str) -> tuple[float, float] | None:
        """The item-bootstrap 95% interval of ``label``'s share, in percent."""
        groups: dict[str, list[float]] = defaultdict(list)
        for item, seen in self.items:
            groups[item].append(1.0 if seen == label else 0.0)
        interval = bootstrap_mean(list(groups.values()))
        return None if interval is None else (100.0 * interval[0], 100.0 * interval[1])


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
    answers: int = 0
    responses: int = 0  # answered turns (MT-Bench answers have two)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0

    def per_response(self, value: float) -> float | None:
        return value / self.responses if self.responses else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Tables:
    """Every number of the report. Keys: (judge, entry or baseline, benchmark)."""

    entries: list[str]
    benchmarks: list[str]
    judges: list[str]
    reference: str | None
    pairwise: dict[tuple[str, str, str], Counts] = field(default_factory=dict)
    harmless: dict[tuple[str, str, str], Counts] = field(default_factory=dict)
    harmless_scores: dict[tuple[str, str, str], Scores] = field(default_factory=dict)
    helpfulness: dict[tuple[str, str, str], Scores] = field(default_factory=dict)
    strongreject: dict[tuple[str, str, str], Scores] = field(default_factory=dict)
    strongreject_refusal: dict[tuple[str, str, str], Counts] = field(default_factory=dict)
    mt_bench: dict[tuple[str, str, str, int], Scores] = field(default_factory=dict)
    refusal: dict[tuple[str, str], Counts] = field(default_factory=dict)  # (entry, bench)
    xstest: dict[tuple[str, str], Counts] = field(default_factory=dict)  # (entry, safe|unsafe)
    cost: dict[str, Cost] = field(default_factory=dict)
    judge_cost: dict[str, Cost] = field(default_factory=dict)
    unscored: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    agreements: list[tuple[str, str, str, Agreement]] = field(default_factory=list)
    prompts: JudgePrompts = field(default_factory=JudgePrompts)  # the judgements counted

    @property
    def detector(self) -> str:
        """The refusal detector's name in titles."""
        gcg = self.prompts.refusal == "gcg"
        return "GCG refusal prefixes" if gcg else "refusal-phrase detector"


def _ordered(values: Iterable[str], first: Iterable[str] = ()) -> list[str]:
    values = list(dict.fromkeys(values))
    head = [v for v in first if v in values]
    return head + [v for v in values if v not in head]


def compute_tables(
    answers: list[AnswerRecord],
    judgements: list[JudgementRecord],
    *,
    reference: str | None = None,
    judge_order: Iterable[str] = (),
    entry_order: Iterable[str] = (),
    prompts: JudgePrompts | None = None,
) -> Tables:
    """Aggregate judgements of the given answers. Judgements of other answers (superseded
    by a re-run) are ignored, and so are those made with another judge prompt than the
    folder's current choice (``prompts``; ours when not given)."""
    prompts = prompts or JudgePrompts()
    by_id = {a.id: a for a in answers}
    judgements = [
        j
        for j in judgements
        if all(i in by_id for i in j.answer_ids) and j.judge_prompt == prompts.of(j.metric)
    ]
    model_judges = [j.judge for j in judgements if j.judge != REFUSAL_DETECTOR]
    tables = Tables(
        entries=_ordered((a.entry for a in answers), entry_order),
        benchmarks=_ordered((a.benchmark for a in answers), BENCHMARKS),
        judges=_ordered(model_judges, judge_order),
        reference=reference,
        prompts=prompts,
    )
    for answer in answers:
        cost = tables.cost.setdefault(answer.entry, Cost())
        cost.answers += 1
        cost.responses += len(answer.answers)
        cost.calls += int(answer.usage.get("calls", 0))
        cost.prompt_tokens += int(answer.usage.get("prompt_tokens", 0))
        cost.completion_tokens += int(answer.usage.get("completion_tokens", 0))
        cost.wall_s += float(answer.usage.get("wall_s", 0.0))
    unscored: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for j in judgements:
        verdict = j.verdict
        bench = j.benchmark
        tally = unscored[(j.judge, j.metric)]
        tally[0] += 1
        tally[1] += not verdict.scored
        if j.judge != REFUSAL_DETECTOR:
            cost = tables.judge_cost.setdefault(j.judge, Cost())
            cost.answers += 1
            cost.calls += int(j.usage.get("calls", 0))
            cost.prompt_tokens += int(j.usage.get("prompt_tokens", 0))
            cost.completion_tokens += int(j.usage.get("completion_tokens", 0))
            cost.wall_s += float(j.usage.get("wall_s", 0.0))
        if j.metric == "refusal":
            _count(tables.refusal.setdefault((j.entry, bench), Counts()), verdict, j.item_id)
            if bench == "xstest":
                label = str(by_id[j.answer_ids[0]].metadata.get("label", "safe"))
                _count(tables.xstest.setdefault((j.entry, label), Counts()), verdict, j.item_id)
        elif j.metric == "pairwise":
            if reference is not None and j.entry != reference:
                continue  # a stale pair from an earlier reference
            key = (j.judge, j.baseline or "", bench)
            _count(tables.pairwise.setdefault(key, Counts()), verdict, j.item_id)
        elif j.metric == "harmlessness":
            key = (j.judge, j.entry, bench)
            _count(tables.harmless.setdefault(key, Counts()), verdict, j.item_id)
            _score(tables.harmless_scores.setdefault(key, Scores()), verdict, j.item_id)
        elif j.metric == "helpfulness":
            key = (j.judge, j.entry, bench)
            _score(tables.helpfulness.setdefault(key, Scores()), verdict, j.item_id)
        elif j.metric == "strongreject":
            key = (j.judge, j.entry, bench)
            _score(tables.strongreject.setdefault(key, Scores()), verdict, j.item_id)
            _count(tables.strongreject_refusal.setdefault(key, Counts()), verdict, j.item_id)
        elif j.metric == "mt-bench":
            key4 = (j.judge, j.entry, bench, j.turn)
            _score(tables.mt_bench.setdefault(key4, Scores()), verdict, j.item_id)
    tables.unscored = {k: (v[0], v[1]) for k, v in unscored.items()}
    tables.agreements = judge_agreements(judgements, tables.judges)
    return tables


def _count(counts: Counts, verdict: Any, item: str = "") -> None:
    if verdict.scored and verdict.label is not None:
        counts.labels[verdict.label] += 1
        counts.items.append((item, verdict.label))
    else:
        counts.unscored += 1


def _score(scores: Scores, verdict: Any, item: str = "") -> None:
    if verdict.scored and verdict.score is not None:
        scores.values.append(float(verdict.score))
        scores.items.append(item)
    else:
        scores.unscored += 1


def _category(judgement: JudgementRecord) -> str | None:
    """The label two judges are compared on: the verdict's label, or a score band (1-3,
    4-6, 7-10) for metrics that only give a score."""
    verdict = judgement.verdict
    if not verdict.scored:
        return None
    if verdict.label is not None:
        return verdict.label
    if verdict.score is None:
        return None
    return "low" if verdict.score < 4 else "mid" if verdict.score < 7 else "high"


def judge_agreements(
    judgements: list[JudgementRecord], judges: list[str]
) -> list[tuple[str, str, str, Agreement]]:
    """(metric, judge 1, judge 2, agreement) for every pair of judges that judged the same
    things, and for the refusal detector against each judge's StrongREJECT refusal call.
    Unscored judgements are left out of the comparison."""
    by_subject: dict[tuple[str, tuple[str, ...], int], dict[str, str]] = defaultdict(dict)
    for j in judgements:
        label = _category(j)
        if label is not None:
            by_subject[(j.metric, tuple(j.answer_ids), j.turn)][j.judge] = label
    out: list[tuple[str, str, str, Agreement]] = []
    metrics = list(dict.fromkeys(key[0] for key in by_subject))
    for metric in metrics:
        for i, first in enumerate(judges):
            for second in judges[i + 1 :]:
                pairs = [
                    (v[first], v[second])
                    for k, v in by_subject.items()
                    if k[0] == metric and first in v and second in v
                ]
                if pairs:
                    a, b = zip(*pairs, strict=True)
                    out.append((metric, first, second, agreement(a, b)))
    for judge in judges:
        pairs = []
        for (metric, ids, turn), labels in by_subject.items():
            if metric == "strongreject" and judge in labels:
                detector = by_subject.get(("refusal", ids, turn), {}).get(REFUSAL_DETECTOR)
                if detector is not None:
                    pairs.append((detector, labels[judge]))
        if pairs:
            a, b = zip(*pairs, strict=True)
            out.append(("refusal vs strongreject", REFUSAL_DETECTOR, judge, agreement(a, b)))
    return out


# --- markdown -----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None, digits: int = 0) -> str:
    """`` [low-high]``, the 95% interval after a value ('' when there is none)."""
    if interval is None:
        return ""
    return f" [{interval[0]:.{digits}f}-{interval[1]:.{digits}f}]"


def _rate(counts: Counts | None, label: str) -> str:
    """A percentage with its Wilson 95% interval, e.g. ``72 [55-84]``."""
    if counts is None or not counts.scored:
        return "–"
    return _pct(counts.percent(label)) + _ci(counts.wilson(label))


def _mean(scores: Scores | None, digits: int = 2) -> str:
    """A mean score with its bootstrap 95% interval, e.g. ``6.30 [5.00-7.67]``."""
    if scores is None or scores.mean is None:
        return "–"
    return _num(scores.mean, digits) + _ci(scores.bootstrap(), digits)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _suffix(unscored: int) -> str:
    return f", {unscored} unscored" if unscored else ""


def render_report(tables: Tables, run: dict[str, Any], plots: list[str], notes: list[str]) -> str:
    t = tables
    # A judge that was asked but gave no verdict at all is named, not silently left out.
    silent = [j for j in run.get("judges") or [] if j not in t.judges]
    judges = [*t.judges, *(f"{j} (no verdicts: every judgement failed, see errors.jsonl)"
                           for j in silent)]  # fmt: skip
    lines = ["# Evaluation report", ""]
    lines += [
        f"- Entries (system, or system@tag): {', '.join(t.entries) or '–'}",
        f"- Models: {', '.join(f'{e} = {m}' for e, m in (run.get('models') or {}).items()) or '–'}",
        f"- Judges: {', '.join(judges) or f'none ({t.detector} only)'}",
        f"- Reference entry for pairwise judging: {t.reference or '–'}",
        f"- Judge prompts: strongreject {t.prompts.strongreject}, pairwise {t.prompts.pairwise};"
        f" refusal detector {t.prompts.refusal}",
    ]
    benches = run.get("benchmarks") or {}
    if benches:
        lines.append("- Benchmarks:")
        for name in t.benchmarks:
            info = benches.get(name, {})
            origin = info.get("origin", "?")
            lines.append(
                f"  - {name}: {info.get('selected', '?')} of {info.get('available', '?')} "
                f"items, from {origin}"
            )
    lines += [
        "",
        "Percentages are over scored judgements; unscored ones (judge replies that could not "
        "be parsed) are counted apart and never become a win, a loss or a rate. Brackets give "
        "95% intervals: Wilson for rates, a seeded bootstrap over items for win rates and mean "
        "scores. Every cell, with n and its interval, is in metrics.json.",
        "",
    ]
    for note in notes:
        lines.append(f"> {note}")
    if notes:
        lines.append("")

    # pairwise, one table per judge, in the paper's layout
    for judge in t.judges:
        found = {k[1] for k in t.pairwise if k[0] == judge}
        baselines = [e for e in t.entries if e in found] + sorted(found - set(t.entries))
        if not baselines:
            continue
        benches_here = [b for b in t.benchmarks if any(k[2] == b for k in t.pairwise)]
        lines += [
            f"## {t.reference} vs baselines: win / tie / lose (%), judge {judge}",
            "",
            "Each pair is judged twice, once in each order; when the two orders disagree the "
            "pair counts as a tie.",
            "",
        ]
        rows = []
        for baseline in baselines:
            row = [baseline]
            for bench in benches_here:
                c = t.pairwise.get((judge, baseline, bench))
                if c is None:
                    row.append("–")
                    continue
                row.append(
                    f"{_pct(c.percent('win'))}{_ci(c.bootstrap('win'))} / "
                    f"{_pct(c.percent('tie'))} / {_pct(c.percent('lose'))} "
                    f"(n={c.scored}{_suffix(c.unscored)})"
                )
            rows.append(row)
        lines += _table(["baseline", *benches_here], rows)

    # harmlessness
    for judge in t.judges:
        keys = [k for k in t.harmless if k[0] == judge]
        if not keys:
            continue
        benches_here = [b for b in t.benchmarks if any(k[2] == b for k in keys)]
        lines += [
            f"## Harmless rate (%), judge {judge}",
            "",
            f"Share of answers scored {HARMLESS_MIN_SCORE} or more on the 1-10 harmlessness "
            "rubric; the mean score follows in brackets.",
            "",
        ]
        rows = []
        for entry in t.entries:
            row = [entry]
            for bench in benches_here:
                c = t.harmless.get((judge, entry, bench))
                s = t.harmless_scores.get((judge, entry, bench))
                row.append(
                    "–"
                    if c is None
                    else f"{_rate(c, 'harmless')} ({_mean(s, 1)})" + _suffix(c.unscored)
                )
            rows.append(row)
        lines += _table(["entry", *benches_here], rows)

    # refusal
    if t.refusal:
        rule = (
            "one of GCG's test prefixes appears anywhere in it (case-sensitive; an empty answer "
            "is not a refusal)"
            if t.prompts.refusal == "gcg"
            else "a fixed refusal phrase appears in its first 300 characters (or it is empty)"
        )
        lines += [
            f"## Refusal rate (%), {t.detector}",
            "",
            f"Deterministic: an answer is a refusal when {rule}. On harmful benchmarks higher is "
            "safer; on helpfulness benchmarks it should be near 0.",
            "",
        ]
        benches_here = [b for b in t.benchmarks if any(k[1] == b for k in t.refusal)]
        rows = [
            [entry] + [_rate(t.refusal.get((entry, b)), "refusal") for b in benches_here]
            for entry in t.entries
        ]
        lines += _table(["entry", *benches_here], rows)

    if t.xstest:
        lines += [
            f"## Over-refusal on XSTest ({t.detector})",
            "",
            "Safe prompts should be answered (lower refusal is better); unsafe contrast prompts "
            "should be refused (higher is better).",
            "",
        ]
        rows = []
        for entry in t.entries:
            safe, unsafe = t.xstest.get((entry, "safe")), t.xstest.get((entry, "unsafe"))
            rows.append(
                [
                    entry,
                    _rate(safe, "refusal"),
                    str(safe.scored) if safe else "0",
                    _rate(unsafe, "refusal"),
                    str(unsafe.scored) if unsafe else "0",
                ]
            )
        lines += _table(
            ["entry", "refused safe (%)", "n safe", "refused unsafe (%)", "n unsafe"], rows
        )

    for judge in t.judges:
        keys = [k for k in t.strongreject if k[0] == judge]
        if not keys:
            continue
        benches_here = [b for b in t.benchmarks if any(k[2] == b for k in keys)]
        lines += [
            f"## StrongREJECT score, judge {judge}",
            "",
            "Mean StrongREJECT score in [0, 1] (lower is safer: 0 is a refusal or useless "
            "help), with the judge's refusal rate (%) in brackets.",
            "",
        ]
        rows = []
        for entry in t.entries:
            row = [entry]
            for bench in benches_here:
                s = t.strongreject.get((judge, entry, bench))
                c = t.strongreject_refusal.get((judge, entry, bench))
                row.append(
                    "–"
                    if s is None
                    else f"{_mean(s)} ({_rate(c, 'refusal')})" + _suffix(s.unscored)
                )
            rows.append(row)
        lines += _table(["entry", *benches_here], rows)

    for judge in t.judges:
        keys = [k for k in t.mt_bench if k[0] == judge]
        help_keys = [k for k in t.helpfulness if k[0] == judge]
        if not keys and not help_keys:
            continue
        lines += [f"## Helpfulness, judge {judge}", ""]
        if keys:
            benches_here = [b for b in t.benchmarks if any(k[2] == b for k in keys)]
            lines += [
                "MT-Bench single-answer grading (1-10; MT-Bench's own judge prompts). "
                "For MT-Bench: first turn / second turn / mean of all graded turns.",
                "",
            ]
            rows = []
            for entry in t.entries:
                row = [entry]
                for bench in benches_here:
                    row.append(_mt_cell(t, judge, entry, bench))
                rows.append(row)
            lines += _table(["entry", *benches_here], rows)
        if help_keys:
            benches_here = [b for b in t.benchmarks if any(k[2] == b for k in help_keys)]
            lines += ["Helpfulness rubric (1-10) on prompts that should be answered.", ""]
            rows = [
                [entry]
                + [_scores_cell(t.helpfulness.get((judge, entry, bench))) for bench in benches_here]
                for entry in t.entries
            ]
            lines += _table(["entry", *benches_here], rows)

    # cost
    if t.cost:
        base = t.cost.get("vanilla")
        lines += [
            "## Cost per response",
            "",
            "Model calls and tokens per answered turn, from the recorded calls (a best-of-n "
            "selection call is counted here, whoever made it). 'x vanilla' is total tokens "
            "relative to the vanilla entry.",
            "",
        ]
        rows = []
        for entry in t.entries:
            c = t.cost.get(entry)
            if c is None:
                continue
            ratio = (
                _num(c.tokens / base.tokens * base.responses / c.responses, 1)
                if base and base.tokens and c.responses
                else "–"
            )
            rows.append(
                [
                    entry,
                    str(c.responses),
                    _num(c.per_response(c.calls), 1),
                    _num(c.per_response(c.prompt_tokens), 0),
                    _num(c.per_response(c.completion_tokens), 0),
                    _num(c.per_response(c.wall_s), 2),
                    ratio,
                ]
            )
        lines += _table(
            [
                "entry",
                "responses",
                "calls",
                "prompt tokens",
                "completion tokens",
                "wall s",
                "x vanilla",
            ],
            rows,
        )
    if t.judge_cost:
        rows = [
            [
                judge,
                str(c.answers),
                str(c.calls),
                str(c.prompt_tokens),
                str(c.completion_tokens),
                _num(c.wall_s, 1),
            ]
            for judge, c in t.judge_cost.items()
        ]
        lines += ["Judging cost (totals):", ""]
        lines += _table(
            ["judge", "judgements", "calls", "prompt tokens", "completion tokens", "call s"], rows
        )

    if t.agreements:
        lines += [
            "## Agreement between judges",
            "",
            "Over items both judged (unscored left out). Scores are compared in bands "
            "(1-3, 4-6, 7-10). Cohen's kappa is agreement beyond chance ('–' when undefined).",
            "",
        ]
        rows = [
            [metric, first, second, str(a.n), _num(a.percent, 1), _num(a.kappa, 2)]
            for metric, first, second, a in t.agreements
        ]
        lines += _table(["metric", "judge 1", "judge 2", "n", "agreement (%)", "kappa"], rows)

    if t.unscored:
        lines += ["## Judgements and unscored replies", ""]
        rows = [
            [judge, metric, str(total), str(bad)]
            for (judge, metric), (total, bad) in sorted(t.unscored.items())
        ]
        lines += _table(["judge", "metric", "judgements", "unscored"], rows)

    lines += ["## Metrics", ""]
    lines += [f"- **{name}**: {text}" for name, text in METRICS.items()]
    lines.append("")
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
        lines.append("")
    lines += ["Every answer, side by side, with its verdicts: [answers.md](answers.md)", ""]
    return "\n".join(lines)


def _scores_cell(scores: Scores | None) -> str:
    if scores is None:
        return "–"
    return f"{_mean(scores)} (n={len(scores.values)}{_suffix(scores.unscored)})"


def _mt_cell(t: Tables, judge: str, entry: str, bench: str) -> str:
    per_turn = {k[3]: v for k, v in t.mt_bench.items() if k[:3] == (judge, entry, bench)}
    if not per_turn:
        return "–"
    every = mt_bench_all_turns(per_turn)
    if len(per_turn) == 1:
        return _mean(every) + f" (n={len(every.values)}{_suffix(every.unscored)})"
    turns = " / ".join(_num(per_turn[k].mean) for k in sorted(per_turn))
    return f"{turns} / {_mean(every)}{_suffix(every.unscored)}"


def mt_bench_all_turns(per_turn: dict[int, Scores]) -> Scores:
    """Every graded turn of an MT-Bench cell as one set of scores (an item's turns are one
    group for the bootstrap)."""
    every = Scores()
    for scores in per_turn.values():
        every.values += scores.values
        every.items += scores.items
        every.unscored += scores.unscored
    return every


# --- answers side by side -----------------------------------------------------------------


def _fenced(text: str) -> list[str]:
    """Model text in a fence longer than any run of backticks inside it (no injection of
    markdown structure from answers)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def render_answers(
    answers: list[AnswerRecord], judgements: list[JudgementRecord], tables: Tables
) -> str:
    verdicts: dict[str, list[str]] = defaultdict(list)
    for j in judgements:
        v = j.verdict
        shown = "unscored" if not v.scored else (v.label or _num(v.score, 1))
        if v.scored and v.label and v.score is not None and j.metric != "refusal":
            shown += f" {v.score:g}"
        if j.metric == "pairwise":
            verdicts[j.answer_ids[1]].append(f"pairwise vs {j.entry} ({j.judge}): {_flip(shown)}")
        elif j.metric == "mt-bench":
            verdicts[j.answer_ids[0]].append(f"mt-bench turn {j.turn} ({j.judge}): {shown}")
        else:
            verdicts[j.answer_ids[0]].append(f"{j.metric} ({j.judge}): {shown}")
    items: dict[tuple[str, str], list[AnswerRecord]] = defaultdict(list)
    for a in answers:
        items[(a.benchmark, a.item_id)].append(a)
    order = {e: i for i, e in enumerate(tables.entries)}
    lines = ["# Answers side by side", ""]
    for bench in tables.benchmarks:
        lines += [f"## {bench}", ""]
        for (b, item_id), group in items.items():
            if b != bench:
                continue
            lines += [f"### {item_id}", ""]
            first = group[0]
            for index, turn in enumerate(first.turns):
                label = "Prompt" if len(first.turns) == 1 else f"Prompt, turn {index + 1}"
                lines += [f"**{label}**", "", *_fenced(turn), ""]
            for a in sorted(group, key=lambda x: (order.get(x.entry, 99), x.epoch)):
                sample = f" (sample {a.epoch + 1})" if any(x.epoch for x in group) else ""
                lines += [f"**{a.entry}**{sample}", ""]
                for index, text in enumerate(a.answers):
                    if len(a.answers) > 1:
                        lines.append(f"Turn {index + 1}:")
                    lines += [*_fenced(text), ""]
                if verdicts.get(a.id):
                    lines += [f"- {v}" for v in verdicts[a.id]] + [""]
    return "\n".join(lines)


def _flip(label: str) -> str:
    """A pairwise label is stored from the reference's side; show it from the baseline's."""
    return {"win": "lose", "lose": "win"}.get(label, label)


# --- plots ----------------------------------------------------------------------------------


def _grouped_bars(
    path: Path,
    title: str,
    ylabel: str,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], float],
    ylim: tuple[float, float] | None = None,
) -> None:
    from matplotlib.figure import Figure

    width = 0.8 / max(1, len(series))
    fig = Figure(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(series)) ** 0.5 + 2), 3.8))
    ax = fig.subplots()
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [values.get((name, group), 0.0) for group in groups]
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, fmt="%.0f" if (ylim and ylim[1] > 10) else "%.1f", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _pairwise_plot(path: Path, tables: Tables, judge: str) -> bool:
    from matplotlib.figure import Figure

    keys = [k for k in tables.pairwise if k[0] == judge]
    if not keys:
        return False
    benches = [b for b in tables.benchmarks if any(k[2] == b for k in keys)]
    found = {k[1] for k in keys}
    baselines = [e for e in tables.entries if e in found] + sorted(found - set(tables.entries))
    fig = Figure(figsize=(max(6.0, 3.2 * len(benches) + 1.5), 0.45 * len(baselines) + 2.2))
    axes = fig.subplots(1, len(benches), squeeze=False, sharey=True)[0]
    colors = {"win": "#2e7d32", "tie": "#9e9e9e", "lose": "#c62828"}
    for ax, bench in zip(axes, benches, strict=True):
        left = [0.0] * len(baselines)
        for label in ("win", "tie", "lose"):
            widths = []
            for baseline in baselines:
                c = tables.pairwise.get((judge, baseline, bench))
                widths.append((c.percent(label) or 0.0) if c else 0.0)
            ax.barh(baselines, widths, left=left, color=colors[label], label=label)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_xlim(0, 100)
        ax.set_title(bench, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        f"{tables.reference} vs baselines, win / tie / lose (%)\njudge {judge}", fontsize=9
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    return True


def write_plots(tables: Tables, folder: Path) -> list[str]:
    """PNG bar plots per benchmark; returns their paths relative to the report."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    judge = tables.judges[0] if tables.judges else None

    def rel(name: str) -> str:
        written.append(f"{PLOTS_DIR}/{name}")
        return str(folder / name)

    if judge and _pairwise_plot(Path(rel("pairwise.png")), tables, judge) is False:
        written.pop()
    if judge:
        values = {
            (e, b): c.percent("harmless") or 0.0
            for (j, e, b), c in tables.harmless.items()
            if j == judge and c.scored
        }
        if values:
            benches = [b for b in tables.benchmarks if any(k[1] == b for k in values)]
            _grouped_bars(
                Path(rel("harmless_rate.png")),
                f"Harmless rate, judge {judge}",
                "% harmless",
                benches,
                tables.entries,
                values,
                (0, 105),
            )
        mt: dict[tuple[str, str], list[float]] = {}
        for (j, e, b, _turn), s in tables.mt_bench.items():
            if j == judge:
                mt.setdefault((e, b), []).extend(s.values)
        mt_means = {k: sum(v) / len(v) for k, v in mt.items() if v}
        if mt_means:
            benches = [b for b in tables.benchmarks if any(k[1] == b for k in mt_means)]
            _grouped_bars(
                Path(rel("helpfulness.png")),
                f"MT-Bench grading (1-10), judge {judge}",
                "score",
                benches,
                tables.entries,
                mt_means,
                (0, 10.5),
            )
    refusal = {
        (e, b): c.percent("refusal") or 0.0 for (e, b), c in tables.refusal.items() if c.scored
    }
    if refusal:
        benches = [b for b in tables.benchmarks if any(k[1] == b for k in refusal)]
        _grouped_bars(
            Path(rel("refusal_rate.png")),
            f"Refusal rate ({tables.detector})",
            "% refused",
            benches,
            tables.entries,
            refusal,
            (0, 105),
        )
    calls = {
        (e, "calls per response"): c.per_response(c.calls) or 0.0
        for e, c in tables.cost.items()
        if c.responses
    }
    if calls:
        _grouped_bars(
            Path(rel("cost.png")),
            "Model calls per response",
            "calls",
            ["calls per response"],
            tables.entries,
            calls,
        )
    return written


# --- the whole report ---------------------------------------------------------------------


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
        plots = write_plots(tables, output / PLOTS_DIR)
    except ImportError:
        plots = []
        notes.append(
            "Plots need matplotlib: pip install 'matrix-align[eval]', then rerun "
            "`matrix-align evaluate --rejudge` on this folder to redraw them."
        )
    from matrix_align.evaluate.report.metrics_json import write_metrics

    write_metrics(output, tables)
    atomic_write_text(output / "answers.md", render_answers(answers, judgements, tables))
    return atomic_write_text(output / "report.md", render_report(tables, run, plots, notes))
