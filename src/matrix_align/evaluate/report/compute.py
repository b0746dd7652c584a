"""The report's numbers: every judgement of the current answers tallied by its metric
(``Metric.tally``), the cost of answering and judging, unscored replies, and how far judges
agree. ``compute_tables`` is a pure function of the stored records, so the tables can be
rebuilt at any time and checked against known judgements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from matrix_align.evaluate.benchmarks import BENCHMARKS
from matrix_align.evaluate.figures import Cost, Tables
from matrix_align.evaluate.judge_prompts import JudgePrompts
from matrix_align.evaluate.judges import REFUSAL_DETECTOR, Agreement, agreement
from matrix_align.evaluate.metrics import METRICS
from matrix_align.folders.results import AnswerRecord, JudgementRecord


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
        tallies={name: {} for metric in METRICS.values() for name in metric.tallies},
        prompts=prompts,
    )
    for answer in answers:
        cost = tables.cost.setdefault(answer.entry, Cost())
        cost.answers += 1
        cost.responses += len(answer.answers)
        cost.add(answer.usage)
    unscored: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for j in judgements:
        tally = unscored[(j.judge, j.metric)]
        tally[0] += 1
        tally[1] += not j.verdict.scored
        if j.judge != REFUSAL_DETECTOR:
            cost = tables.judge_cost.setdefault(j.judge, Cost())
            cost.answers += 1
            cost.add(j.usage)
        metric = METRICS.get(j.metric)
        if metric is not None:
            metric.tally(tables, j, by_id[j.answer_ids[0]])
    tables.unscored = {k: (v[0], v[1]) for k, v in unscored.items()}
    tables.agreements = judge_agreements(judgements, tables.judges)
    return tables


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
    things, and for the refusal detector against each judge's refusal call in the metrics
    that make one (``Metric.compared_with_detector``: StrongREJECT). Unscored judgements are
    left out of the comparison."""
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
    compared = [m.name for m in METRICS.values() if m.compared_with_detector]
    for name in compared:
        for judge in judges:
            pairs = []
            for (metric, ids, turn), labels in by_subject.items():
                if metric == name and judge in labels:
                    detector = by_subject.get(("refusal", ids, turn), {}).get(REFUSAL_DETECTOR)
                    if detector is not None:
                        pairs.append((detector, labels[judge]))
            if pairs:
                a, b = zip(*pairs, strict=True)
                out.append((f"refusal vs {name}", REFUSAL_DETECTOR, judge, agreement(a, b)))
    return out
