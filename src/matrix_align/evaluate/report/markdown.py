"""The markdown of an evaluation folder: ``report.md`` (the run, every metric's tables in the
order of their ``rank``, cost, agreement between judges, unscored replies) and ``answers.md``
(every item with each entry's answers and verdicts).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from matrix_align.evaluate.figures import Tables, num, table
from matrix_align.evaluate.metrics import GROUPS, METRICS, Metric, by_rank
from matrix_align.folders import ANSWERS
from matrix_align.folders.results import AnswerRecord, JudgementRecord

_ANY = Metric()  # how a judgement of a metric no longer known is shown


def render_report(tables: Tables, run: dict[str, Any], plots: list[str], notes: list[str]) -> str:
    """report.md: the run, every metric's tables, cost, judges' agreement and the rest."""
    lines = _header(tables, run, notes)
    lines += metric_sections(tables)
    lines += _cost(tables)
    lines += _judging(tables)
    lines += _closing(plots)
    return "\n".join(lines)


def _header(tables: Tables, run: dict[str, Any], notes: list[str]) -> list[str]:
    """Who was evaluated on what, by which judges and prompts; the conventions; the notes."""
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
        "95% intervals: Wilson over items for rates and win / tie / lose, a seeded bootstrap "
        "over items for mean scores. Every cell, with n and its interval, is in metrics.json.",
        "",
    ]
    for note in notes:
        lines.append(f"> {note}")
    if notes:
        lines.append("")
    return lines


def _cost(tables: Tables) -> list[str]:
    """Calls, tokens and time per answered turn of each entry, and the judges' totals."""
    t = tables
    lines: list[str] = []
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
            used = c.usage
            ratio = (
                num(used.tokens / base.usage.tokens * base.responses / c.responses, 1)
                if base and base.usage.tokens and c.responses
                else "–"
            )
            rows.append(
                [
                    entry,
                    str(c.responses),
                    num(c.per_response(used.calls), 1),
                    num(c.per_response(used.prompt_tokens), 0),
                    num(c.per_response(used.completion_tokens), 0),
                    num(c.per_response(used.wall_s), 2),
                    ratio,
                ]
            )
        lines += table(
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
                str(c.usage.calls),
                str(c.usage.prompt_tokens),
                str(c.usage.completion_tokens),
                num(c.usage.wall_s, 1),
            ]
            for judge, c in t.judge_cost.items()
        ]
        lines += ["Judging cost (totals):", ""]
        lines += table(
            ["judge", "judgements", "calls", "prompt tokens", "completion tokens", "call s"], rows
        )
    return lines


def _judging(tables: Tables) -> list[str]:
    """How far judges agree, and how many replies of each could not be parsed."""
    t = tables
    lines: list[str] = []
    if t.agreements:
        lines += [
            "## Agreement between judges",
            "",
            "Over items both judged (unscored left out). Scores are compared in bands "
            "(1-3, 4-6, 7-10). Cohen's kappa is agreement beyond chance ('–' when undefined).",
            "",
        ]
        rows = [
            [metric, first, second, str(a.n), num(a.percent, 1), num(a.kappa, 2)]
            for metric, first, second, a in t.agreements
        ]
        lines += table(["metric", "judge 1", "judge 2", "n", "agreement (%)", "kappa"], rows)

    if t.unscored:
        lines += ["## Judgements and unscored replies", ""]
        rows = [
            [judge, metric, str(total), str(bad)]
            for (judge, metric), (total, bad) in sorted(t.unscored.items())
        ]
        lines += table(["judge", "metric", "judgements", "unscored"], rows)
    return lines


def _closing(plots: list[str]) -> list[str]:
    """What each metric measures, the plots, the link to answers.md."""
    lines = ["## Metrics", ""]
    lines += [f"- **{name}**: {metric.description}" for name, metric in METRICS.items()]
    lines.append("")
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
        lines.append("")
    lines += [f"Every answer, side by side, with its verdicts: [{ANSWERS}]({ANSWERS})", ""]
    return lines


def metric_sections(tables: Tables) -> list[str]:
    """Every metric's tables, in the order of their ``rank``: a metric that needs a model
    judge once per judge, one without once; metrics of one group share a heading per judge
    (``GROUPS``)."""
    lines: list[str] = []
    done: set[str] = set()
    for metric in by_rank():
        if metric.name in done:
            continue
        group = GROUPS.get(metric.group) if metric.group else None
        members = [METRICS[name] for name in group.members] if group else [metric]
        done.update(m.name for m in members)
        for judge in tables.judges if metric.model_judged else [None]:
            blocks = [line for m in members for line in m.render(tables, judge)]
            if blocks and group:
                lines += [group.heading.format(judge=judge), ""]
                lines += [line for paragraph in group.intro for line in (paragraph, "")]
            lines += blocks
    return lines


# --- answers side by side -----------------------------------------------------------------


def fenced(text: str) -> list[str]:
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
        metric = METRICS.get(j.metric, _ANY)
        v = j.verdict
        shown = "unscored" if not v.scored else (v.label or num(v.score, 1))
        if v.scored and v.label and v.score is not None and metric.show_score:
            shown += f" {v.score:g}"
        answer_id, line = metric.note(j, shown)
        verdicts[answer_id].append(line)
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
                lines += [f"**{label}**", "", *fenced(turn), ""]
            for a in sorted(group, key=lambda x: (order.get(x.entry, 99), x.epoch)):
                sample = f" (sample {a.epoch + 1})" if any(x.epoch for x in group) else ""
                lines += [f"**{a.entry}**{sample}", ""]
                for index, text in enumerate(a.answers):
                    if len(a.answers) > 1:
                        lines.append(f"Turn {index + 1}:")
                    lines += [*fenced(text), ""]
                if verdicts.get(a.id):
                    lines += [f"- {v}" for v in verdicts[a.id]] + [""]
    return "\n".join(lines)
