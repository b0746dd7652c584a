"""``humaneval import``: ratings -> win / tie / lose with intervals and rater agreement, into
the evaluation folder the sheet came from.

Ratings are unblinded with the key (A or B -> the entry behind that position on that row)
and read from the first entry's side: *win* means the first ``--entries`` entry was rated
better. Every rating counts (a row rated by three raters gives three), and the intervals are
Wilson's over *items* (an item's ratings move together: its raters share one unit of n), as
for the model judges' pairwise tables. The same is broken down by the stratification field
(e.g. harm category) and by rater. Agreement is Krippendorff's alpha over the rows rated by
at least two raters, nominal (win, tie, lose as three categories) and ordinal (lose < tie < win).

Written into the run folder: ``humaneval.json`` (every sheet imported so far, by sheet id) and
``humaneval.md`` (their section, which the evaluation report includes), then the report is
rebuilt.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from matrix_align.humaneval.agreement import krippendorff_alpha
from matrix_align.humaneval.ratings import Rating
from matrix_align.stats import wilson_over_items

RESULTS_JSON = "humaneval.json"
SECTION_MD = "humaneval.md"  # included at the end of report.md by evaluate's report
LABELS = ("win", "tie", "lose")


def unblind(ratings: list[Rating], key: dict[str, Any]) -> list[dict[str, Any]]:
    """Each rating as win / tie / lose of the first entry, with its row's item and stratum."""
    first = key["entries"][0]
    rows = {int(r["row"]): r for r in key["rows"]}
    out = []
    for rating in ratings:
        row = rows[rating.row]
        if rating.rating == "tie":
            label = "tie"
        else:
            better = row["a"] if rating.rating == "A" else row["b"]
            label = "win" if better == first else "lose"
        out.append(
            {
                "row": rating.row,
                "item": f"{row['benchmark']}|{row['item_id']}",
                "category": row.get("category") or "",
                "rater": rating.rater,
                "label": label,
            }
        )
    return out


def shares(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, shares and Wilson 95% intervals over items of win, tie and lose."""
    counts = Counter(v["label"] for v in votes)
    n = len(votes)
    out: dict[str, Any] = {"n": n, "items": len({v["item"] for v in votes})}
    for label in LABELS:
        groups: dict[str, list[float]] = defaultdict(list)
        for v in votes:
            groups[v["item"]].append(1.0 if v["label"] == label else 0.0)
        interval = wilson_over_items(list(groups.values()))
        out[label] = {
            "count": counts.get(label, 0),
            "share": counts.get(label, 0) / n if n else None,
            "low": interval[0] if interval else None,
            "high": interval[1] if interval else None,
        }
    return out


def agreement(votes: list[dict[str, Any]]) -> dict[str, Any]:
    units: dict[str, list[str]] = defaultdict(list)
    for v in votes:
        units[v["item"]].append(v["label"])
    paired = {u: values for u, values in units.items() if len(values) > 1}
    return {
        "raters": len({v["rater"] for v in votes}),
        "items_rated_twice_or_more": len(paired),
        "alpha_nominal": krippendorff_alpha(paired, "nominal"),
        "alpha_ordinal": krippendorff_alpha(paired, "ordinal", order=("lose", "tie", "win")),
    }


def tally(ratings: list[Rating], key: dict[str, Any]) -> dict[str, Any]:
    votes = unblind(ratings, key)
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_rater: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in votes:
        by_category[v["category"] or "(none)"].append(v)
        by_rater[v["rater"]].append(v)
    return {
        "sheet": key["sheet"],
        "entries": key["entries"],
        "blind": key.get("blind"),
        "stratify": key.get("stratify"),
        "rows_on_sheet": len(key.get("rows") or []),
        "overall": shares(votes),
        "by_category": {c: shares(vs) for c, vs in sorted(by_category.items())},
        "by_rater": {r: shares(vs) for r, vs in sorted(by_rater.items())},
        "agreement": agreement(votes),
        "level": 0.95,
        "interval": "Wilson score over items (the ratings of an item share its one unit)",
    }


def _pct(part: dict[str, Any]) -> str:
    if part["share"] is None:
        return "-"
    ci = f" [{100 * part['low']:.0f}-{100 * part['high']:.0f}]" if part["low"] is not None else ""
    return f"{100 * part['share']:.0f}{ci}"


def _alpha(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def render(results: dict[str, Any]) -> str:
    lines = ["## Human evaluation", ""]
    for result in results.values():
        first, second = result["entries"]
        o = result["overall"]
        a = result["agreement"]
        lines += [
            f"### {first} vs {second} (sheet {result['sheet']})",
            "",
            f"{o['n']} ratings of {o['items']} of the sheet's {result['rows_on_sheet']} items "
            f"by {a['raters']} rater(s), {'blind' if result['blind'] else 'not blind'}; "
            f"win = {first} rated better. Percent, 95% Wilson interval over items.",
            "",
            "| | ratings | win | tie | lose |",
            "|---|---|---|---|---|",
            f"| all | {o['n']} | {_pct(o['win'])} | {_pct(o['tie'])} | {_pct(o['lose'])} |",
        ]
        if result.get("stratify"):
            for category, part in result["by_category"].items():
                lines.append(
                    f"| {result['stratify']}: {category} | {part['n']} | "
                    f"{_pct(part['win'])} | {_pct(part['tie'])} | {_pct(part['lose'])} |"
                )
        for rater, part in result["by_rater"].items():
            lines.append(
                f"| rater {rater} | {part['n']} | {_pct(part['win'])} | "
                f"{_pct(part['tie'])} | {_pct(part['lose'])} |"
            )
        lines += [
            "",
            f"Rater agreement (Krippendorff's alpha, {a['items_rated_twice_or_more']} items "
            f"rated by two or more raters): nominal {_alpha(a['alpha_nominal'])}, ordinal "
            f"(lose < tie < win) {_alpha(a['alpha_ordinal'])}.",
            "",
        ]
    return "\n".join(lines)


def write_results(run: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    """Add (or replace) this sheet's result in the run's humaneval.json and humaneval.md,
    then rebuild the run's report, which includes the section."""
    from matrix_align.evaluate.report import write_report
    from matrix_align.io import atomic_write_json, atomic_write_text

    path = Path(run) / RESULTS_JSON
    try:
        stored = json.loads(path.read_text("utf-8")).get("sheets") or {}
    except (OSError, ValueError, AttributeError):
        stored = {}
    stored[result["sheet"]] = result
    atomic_write_json(path, {"sheets": stored})
    section = atomic_write_text(Path(run) / SECTION_MD, render(stored))
    write_report(run)
    return path, section
