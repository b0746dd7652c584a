"""Reading an ``evaluate`` output folder for the evaluation page.

The tables and plots are shown as ``evaluate`` wrote them (``report.md``, ``plots/*.png``).
The per-sample view is built from ``results.jsonl``, which holds two kinds of line:
``answer`` (one entry's answer to one benchmark item, with its traces) and ``judgement``
(one metric by one judge on one answer, or on a pair). The same rules as ``evaluate``'s
own report apply, so the page and the report never disagree: the first line of an id wins,
the latest answer per (benchmark, item, entry) supersedes older ones, and judgements of a
superseded answer are left out. Lines are read loosely (see ``loose``); a line of another
kind is shown raw on its item's card rather than dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matrix_align.folders import ANSWERS, ERRORS, REPORT, RESULTS, RUN, SUMMARY, folder_kind
from matrix_align.redact import redact
from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.loose import as_dict, jsonl_objects, text_of

RUN_FILES = (RUN, SUMMARY)
SITE_MARKER = ".matrix-align-view"
# report.md links to answers.md; the page's own per-sample section replaces that file.
REPORT_LINKS = {ANSWERS: "#results"}


@dataclass
class JudgementView:
    metric: str
    judge: str
    entry: str
    baseline: str
    turn: int
    scored: bool
    label: str
    score: str
    detail: list[tuple[str, str]]

    @property
    def outcome(self) -> str:
        """What the badge says: the label, else the score, else that it was not scored."""
        if not self.scored:
            return "unscored"
        return self.label or self.score or "scored"

    @property
    def filter_key(self) -> str:
        return f"{self.metric}:{self.outcome}"


@dataclass
class AnswerView:
    id: str
    entry: str
    model: str
    turns: list[tuple[str, str]]  # (user turn, answer); the first turn's prompt is the card's
    calls: int
    tokens: int
    wall_s: float
    scenes: list[str] = field(default_factory=list)  # hrefs of this answer's traces, per turn
    judgements: list[JudgementView] = field(default_factory=list)  # about this answer alone


@dataclass
class ItemCard:
    """One benchmark item: every entry's answer side by side, and every verdict on them."""

    benchmark: str
    item_id: str
    prompt: str
    answers: dict[str, AnswerView] = field(default_factory=dict)  # entry -> latest answer
    pairwise: list[JudgementView] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def filter_keys(self) -> str:
        keys = {j.filter_key for a in self.answers.values() for j in a.judgements}
        keys |= {j.filter_key for j in self.pairwise}
        return " ".join(sorted(keys))


@dataclass
class Plot:
    name: str  # the path as found in the folder, e.g. "plots/pairwise.png"
    href: str  # its copy in the site


@dataclass
class Failure:
    mode: str
    query: str
    reason: str
    detail: str


@dataclass
class Evaluation:
    folder: Path
    report: str = ""
    plots: list[Plot] = field(default_factory=list)
    cards: list[ItemCard] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)  # run.json and summary.json, merged
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(c.benchmark for c in self.cards if c.benchmark))

    @property
    def entries(self) -> list[str]:
        return list(dict.fromkeys(e for c in self.cards for e in c.answers))

    @property
    def outcome_counts(self) -> list[tuple[str, int]]:
        """(metric:outcome, items) for the page's filter, most frequent first."""
        counts = Counter(key for c in self.cards for key in c.filter_keys.split())
        return sorted(counts.items(), key=lambda kv: (kv[0].split(":")[0], -kv[1], kv[0]))

    @property
    def pairwise_totals(self) -> list[tuple[str, Counter[str]]]:
        """Per pair, how its verdicts came out: the headline figures of the page."""
        totals: dict[str, Counter[str]] = {}
        for card in self.cards:
            for j in card.pairwise:
                totals.setdefault(f"{j.entry} vs {j.baseline}", Counter())[j.outcome] += 1
        return list(totals.items())


def is_evaluation_folder(path: Path) -> bool:
    return folder_kind(path) == "evaluate"


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _judgement(obj: dict[str, Any]) -> JudgementView:
    verdict = as_dict(obj.get("verdict"))
    return JudgementView(
        metric=str(obj.get("metric") or "?"),
        judge=str(obj.get("judge") or "?"),
        entry=str(obj.get("entry") or ""),
        baseline=str(obj.get("baseline") or ""),
        turn=int(obj.get("turn") or 1),
        scored=bool(verdict.get("scored", True)),
        label=_show(verdict.get("label")),
        score=_show(verdict.get("score")),
        detail=[(str(k), _show(v)) for k, v in as_dict(verdict.get("detail")).items()],
    )


def _traces(obj: dict[str, Any], number: int, warnings: list[str]) -> list[SceneTrace]:
    out = []
    for raw in obj.get("traces") or []:
        try:
            out.append(SceneTrace.model_validate(raw))
        except ValidationError:
            warnings.append(
                f"{RESULTS} line {number}: a trace is unreadable; its scene is left out"
            )
    return out


def own_file(folder: Path, path: Path, warnings: list[str]) -> bool:
    """Whether ``path`` is a regular file of ``folder`` itself. A symbolic link (to the file
    or to a folder above it) could point anywhere, and whatever it points at would be copied
    into the site and served; it is left out, with a warning."""
    if not path.exists() and not path.is_symlink():
        return False
    try:
        inside = path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except OSError:
        inside = False
    if path.is_symlink() or not inside or not path.is_file():
        warnings.append(
            f"{path.relative_to(folder).as_posix()}: a link or not a regular file; not shown"
        )
        return False
    return True


def read_evaluation(
    folder: Path,
    copy_plot: Callable[[Path], str],
    on_scene: Callable[[str, SceneTrace, str], str],
) -> Evaluation:
    """Read ``folder``. ``copy_plot(path)`` copies a PNG into the site and returns its href;
    ``on_scene(name, trace, label)`` renders a trace and returns its href."""
    data = Evaluation(folder)
    if own_file(folder, folder / REPORT, data.warnings):
        data.report = (folder / REPORT).read_text(encoding="utf-8", errors="replace")
    for png in sorted(folder.glob("*.png")) + sorted(folder.glob("*/*.png")):
        if png.parent.name.startswith(".") or (png.parent / SITE_MARKER).exists():
            continue  # a site written into this folder, not one of the report's plots
        if own_file(folder, png, data.warnings):
            data.plots.append(Plot(png.relative_to(folder).as_posix(), copy_plot(png)))
    for name in RUN_FILES:
        path = folder / name
        if own_file(folder, path, data.warnings):
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                data.warnings.append(f"{name}: not valid JSON; not shown")
                continue
            if isinstance(loaded, dict):
                data.run |= loaded

    seen: set[str] = set()
    cards: dict[tuple[str, str], ItemCard] = {}
    answers: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
    judgements: list[dict[str, Any]] = []

    def card_for(obj: dict[str, Any], number: int) -> ItemCard:
        benchmark = str(obj.get("benchmark") or obj.get("source") or "")
        item = str(obj.get("item_id") or obj.get("prompt") or f"line {number}")
        key = (benchmark, item)
        if key not in cards:
            cards[key] = ItemCard(benchmark, item, text_of(obj.get("prompt")))
        return cards[key]

    for number, obj in jsonl_objects(folder / RESULTS, data.warnings):
        record_id = obj.get("id")
        if isinstance(record_id, str):
            if record_id in seen:
                continue
            seen.add(record_id)
        kind = obj.get("kind")
        card = card_for(obj, number)
        if kind == "answer":
            entry = str(obj.get("entry") or obj.get("system") or "?")
            answers[(card.benchmark, card.item_id, entry)] = (number, obj)
        elif kind == "judgement":
            judgements.append(obj)
        else:
            card.raw.append(json.dumps(obj, ensure_ascii=False, indent=2, default=str)[:4000])

    by_id: dict[str, AnswerView] = {}
    card_of: dict[str, ItemCard] = {}
    for (benchmark, item, entry), (number, obj) in answers.items():
        usage = as_dict(obj.get("usage"))
        prompts = [text_of(obj.get("prompt")), *map(str, obj.get("followups") or [])]
        replies = [text_of(obj.get("answer")), *map(str, obj.get("followup_answers") or [])]
        view = AnswerView(
            id=str(obj.get("id") or f"line-{number}"),
            entry=entry,
            model=str(obj.get("model") or ""),
            turns=list(zip(prompts, replies, strict=False)),
            calls=int(usage.get("calls") or 0),
            tokens=int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0),
            wall_s=float(usage.get("wall_s") or 0.0),
        )
        for turn, trace in enumerate(_traces(obj, number, data.warnings), start=1):
            label = f"{benchmark} {item} · {entry}" + (f" · turn {turn}" if turn > 1 else "")
            view.scenes.append(on_scene(f"{view.id}-{turn}", trace, label))
        cards[(benchmark, item)].answers[entry] = view
        by_id[view.id] = view
        card_of[view.id] = cards[(benchmark, item)]

    for obj in judgements:
        ids = [str(i) for i in obj.get("answer_ids") or []]
        if not ids or not all(i in by_id for i in ids):
            continue  # about an answer a later run superseded: the report leaves it out too
        judgement = _judgement(obj)
        if judgement.baseline or len(ids) > 1:
            card_of[ids[0]].pairwise.append(judgement)
        else:
            by_id[ids[0]].judgements.append(judgement)

    # Entries in the run's own order (the report's row order), others after them.
    order = {str(e): i for i, e in enumerate(data.run.get("entries") or [])}
    for card in cards.values():
        ranked = sorted(card.answers.items(), key=lambda kv: order.get(kv[0], len(order)))
        card.answers = dict(ranked)
    data.cards = [c for c in cards.values() if c.answers or c.raw]
    for _, obj in jsonl_objects(folder / ERRORS, data.warnings):
        data.failures.append(
            Failure(
                mode=str(obj.get("mode") or ""),
                query=str(obj.get("query") or "")[:600],
                reason=str(obj.get("reason") or "unknown"),
                detail=redact(str(obj.get("detail") or ""))[:600],
            )
        )
    return data
