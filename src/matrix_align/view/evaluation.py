"""Reading an ``evaluate`` output folder for the evaluation page.

The report's tables and plots are shown as ``evaluate`` wrote them (``report.md`` and the
PNG files). ``results.jsonl`` is read loosely: each line is matched against the usual names
for a query, the systems' answers and the judge's verdicts, lines about the same query are
gathered into one card (answers side by side, every verdict under them), and any field this
module does not recognise is still shown, raw, so a newer results format loses nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.loose import jsonl_objects, last_user, text_of

RESULTS = "results.jsonl"
REPORT = "report.md"
SITE_MARKER = ".matrix-align-view"

QUERY_KEYS = ("prompt", "query", "question", "instruction", "input")
GROUP_KEYS = ("benchmark", "dataset", "source")
ANSWER_MAPS = ("answers", "responses", "outputs", "completions")
VERDICT_LISTS = ("verdicts", "judgements", "judgments", "judges", "comparisons")
OUTCOME_KEYS = ("verdict", "winner", "outcome", "result", "label", "preference", "score")
REASON_KEYS = ("reason", "rationale", "explanation", "judge_output", "critique")
JUDGE_KEYS = ("judge", "judge_model")
SYSTEM_KEYS = ("system", "method", "model", "candidate")
ANSWER_KEYS = ("answer", "response", "output", "completion")
PAIR_SIDES = (
    (("system_a", "a", "candidate", "method"), ("answer_a", "response_a", "candidate_answer")),
    (("system_b", "b", "baseline", "opponent"), ("answer_b", "response_b", "baseline_answer")),
)
ANSWER_SUFFIXES = ("_answer", "_response", "_output")


@dataclass
class Verdict:
    outcome: str
    between: str = ""  # "matrix vs vanilla", when the line names a pair
    reason: str = ""
    judge: str = ""


@dataclass
class ResultCard:
    """One query and everything the results say about it."""

    key: str
    group: str
    query: str
    answers: dict[str, str] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # unrecognised fields, as JSON
    scenes: list[tuple[str, str]] = field(default_factory=list)  # (label, href)

    @property
    def outcomes(self) -> str:
        """Space-separated outcomes, for the page's filter."""
        return " ".join(sorted({v.outcome.lower() for v in self.verdicts if v.outcome}))


@dataclass
class Plot:
    name: str  # the path as found in the folder, e.g. "plots/win_rates.png"
    href: str  # its copy in the site


@dataclass
class Evaluation:
    folder: Path
    report: str = ""
    plots: list[Plot] = field(default_factory=list)
    cards: list[ResultCard] = field(default_factory=list)
    json_files: list[tuple[str, str]] = field(default_factory=list)  # (name, pretty JSON)
    warnings: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return sorted({c.group for c in self.cards if c.group})

    @property
    def outcome_counts(self) -> list[tuple[str, int]]:
        return Counter(
            v.outcome.lower() for c in self.cards for v in c.verdicts if v.outcome
        ).most_common()


def is_evaluation_folder(path: Path) -> bool:
    return path.is_dir() and ((path / RESULTS).is_file() or (path / REPORT).is_file())


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in obj and obj[key] not in (None, ""):
            return key, obj[key]
    return None, None


def _answer_text(value: Any) -> str:
    if isinstance(value, dict):
        _, inner = _first(value, ("text", "answer", "response", "content", "output"))
        return text_of(inner) if inner is not None else json.dumps(value, ensure_ascii=False)
    return text_of(value)


def _verdict(obj: dict[str, Any], used: set[str], between: str = "") -> Verdict | None:
    key, outcome = _first(obj, OUTCOME_KEYS)
    if key is None:
        return None
    used.add(key)
    reason_key, reason = _first(obj, REASON_KEYS)
    judge_key, judge = _first(obj, JUDGE_KEYS)
    used.update(k for k in (reason_key, judge_key) if k)
    if isinstance(outcome, dict | list):
        outcome = json.dumps(outcome, ensure_ascii=False)
    return Verdict(str(outcome), between, text_of(reason) if reason else "", text_of(judge or ""))


def _absorb(card: ResultCard, obj: dict[str, Any]) -> set[str]:
    """Take the answers and verdicts of one results line into ``card``; return the keys used."""
    used: set[str] = set()
    for key in ANSWER_MAPS:
        value = obj.get(key)
        if isinstance(value, dict):
            used.add(key)
            for system, answer in value.items():
                card.answers[str(system)] = _answer_text(answer)
    names: list[str] = []
    for name_keys, answer_keys in PAIR_SIDES:
        name_key, name = _first(obj, name_keys)
        answer_key, answer = _first(obj, answer_keys)
        if answer_key is not None:
            label = str(name) if name_key and isinstance(name, str) else answer_key
            card.answers[label] = _answer_text(answer)
            used.update(k for k in (name_key, answer_key) if k)
            names.append(label)
        elif name_key is not None and isinstance(name, str):
            names.append(name)
    system_key, system = _first(obj, SYSTEM_KEYS)
    answer_key, answer = _first(obj, ANSWER_KEYS)
    if answer_key is not None:
        label = str(system) if system_key and isinstance(system, str) else "answer"
        card.answers[label] = _answer_text(answer)
        used.update(k for k in (system_key, answer_key) if k)
    for key, value in obj.items():
        if key not in used and key.endswith(ANSWER_SUFFIXES) and isinstance(value, str):
            card.answers[key.rsplit("_", 1)[0]] = value
            used.add(key)
    between = " vs ".join(names) if len(names) == 2 else ""
    for key in VERDICT_LISTS:
        value = obj.get(key)
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        if items:
            used.add(key)
        for item in items:
            if isinstance(item, dict):
                pair = [str(item.get(k)) for k in ("a", "b") if item.get(k)]
                verdict = _verdict(item, set(), " vs ".join(pair) if len(pair) == 2 else "")
                if verdict:
                    card.verdicts.append(verdict)
    verdict = _verdict(obj, used, between)
    if verdict:
        card.verdicts.append(verdict)
    return used


def read_evaluation(
    folder: Path,
    copy_plot: Callable[[Path], str],
    on_scene: Callable[[str, SceneTrace], str],
) -> Evaluation:
    """Read ``folder``. ``copy_plot(path)`` copies a PNG into the site and returns its href;
    ``on_scene(label, trace)`` renders a trace found in the results and returns its href."""
    data = Evaluation(folder)
    report = folder / REPORT
    if report.is_file():
        data.report = report.read_text(encoding="utf-8", errors="replace")
    for png in sorted(folder.glob("*.png")) + sorted(folder.glob("*/*.png")):
        if png.parent.name.startswith(".") or (png.parent / SITE_MARKER).exists():
            continue  # a site written into this folder, not one of the report's plots
        name = png.relative_to(folder).as_posix()
        data.plots.append(Plot(name, copy_plot(png)))
    for path in sorted(folder.glob("*.json")):
        try:
            pretty = json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data.warnings.append(f"{path.name}: not valid JSON; not shown")
            continue
        data.json_files.append((path.name, pretty))
    cards: dict[str, ResultCard] = {}
    for number, obj in jsonl_objects(folder / RESULTS, data.warnings):
        query_key, query = _first(obj, QUERY_KEYS)
        group_key, group = _first(obj, GROUP_KEYS)
        id_key, sample = _first(obj, ("sample_id", "id", "query_id"))
        query_text = last_user(query)[0] if query_key else ""
        group_text = text_of(group) if group_key else ""
        key = f"{group_text}\x00{sample if id_key else query_text or number}"
        card = cards.get(key)
        if card is None:
            card = cards[key] = ResultCard(key, group_text, query_text)
        used = _absorb(card, obj) | {k for k in (query_key, group_key, id_key) if k}
        trace = obj.get("trace")
        if trace:
            used.add("trace")
            try:
                parsed = (
                    SceneTrace.model_validate_json(trace)
                    if isinstance(trace, str)
                    else SceneTrace.model_validate(trace)
                )
            except (ValidationError, ValueError):
                data.warnings.append(f"{RESULTS} line {number}: its trace is unreadable")
            else:
                _, system = _first(obj, ("system", "system_a", "method", "model"))
                label = str(system) if isinstance(system, str) else f"line {number}"
                card.scenes.append((label, on_scene(f"{number}", parsed)))
        rest = {k: v for k, v in obj.items() if k not in used}
        if rest:
            card.raw.append(json.dumps(rest, ensure_ascii=False, indent=2, default=str))
    data.cards = list(cards.values())
    return data
