"""``humaneval export``: a rating sheet comparing two entries of an evaluation folder.

The sheet pairs the answers of two entries (``--entries A,B``) to the same items, sampled
(``--n``, stratified over a metadata field such as PKU-SafeRLHF's harm ``category``, seeded
so the same command gives the same sheet). Blinded (``--blind``), the two answers of each
row are put in a seeded random order and nothing the raters see names an entry or the
folder; which entry is which is in ``key.json``, kept apart from the raters' files:

    RUN/humaneval/<sheet id>/
      key.json             rows -> items, answer ids and which entry is A and B (not for raters)
      ratings/             put the returned rating files here (import finds the key from them)
      for-raters/
        sheet.csv          one row per item: prompt, response A, response B, rating, rater
        form.html          the same sheet as an offline form that downloads the ratings

The sheet id is a hash of what the sheet holds (entries, rows, order), so ratings are only
ever read against the sheet they were made on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

SHEET_FOLDER = "humaneval"
KEY_FILE = "key.json"
RATERS_FOLDER = "for-raters"
RATINGS_FOLDER = "ratings"
SHEET_CSV = "sheet.csv"
FORM_HTML = "form.html"
RATINGS = ("A", "B", "tie")  # what a rater may answer: A better, B better, or a tie
SHEET_COLUMNS = (
    "sheet",
    "row",
    "benchmark",
    "category",
    "prompt",
    "response_a",
    "response_b",
    "rating",
    "rater",
    "comment",
)


@dataclass
class Row:
    row: int
    benchmark: str
    item_id: str
    category: str
    prompt: str
    answers: tuple[Any, Any]  # the AnswerRecords shown as A and B
    entries: tuple[str, str]  # which entry is A and which is B


def split_entries(text: str, known: list[str]) -> tuple[str, str]:
    """``A,B`` -> (A, B). Entry names may hold commas themselves (a sweep's
    ``matrix@roles=1,steps=2``), so the text is cut where both sides are known entries."""
    parts = text.split(",")
    for cut in range(1, len(parts)):
        first, second = ",".join(parts[:cut]).strip(), ",".join(parts[cut:]).strip()
        if first in known and second in known and first != second:
            return first, second
    raise MatrixAlignError(
        f"--entries {text!r} is not two different entries of the folder.",
        hint=f"entries: {', '.join(known)}",
    )


def pick_rows(
    answers: list[Any],
    entries: tuple[str, str],
    *,
    n: int,
    stratify: str | None,
    seed: int,
    blind: bool,
    benchmarks: list[str] | None = None,
    items: dict[str, list[str]] | None = None,
) -> list[Row]:
    """The sheet's rows: items both entries answered (their first sample), limited to
    ``benchmarks`` or a subset's ``items`` when given, then ``n`` of them stratified over the
    ``stratify`` metadata field, each pair in a seeded random order when ``blind``."""
    from matrix_align.evaluate.stratify import stratified_sample

    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for answer in answers:
        if answer.entry in entries and answer.epoch == 0:
            pairs.setdefault((answer.benchmark, answer.item_id), {})[answer.entry] = answer
    both = [(key, by) for key, by in pairs.items() if len(by) == 2]
    if benchmarks:
        both = [(key, by) for key, by in both if key[0] in benchmarks]
    if items is not None:
        order = {(b, i): k for b, ids in items.items() for k, i in enumerate(ids)}
        both = sorted((p for p in both if p[0] in order), key=lambda p: order[p[0]])
    if not both:
        raise MatrixAlignError(
            f"No item has answers from both {entries[0]} and {entries[1]}"
            + (" among the chosen items." if benchmarks or items else "."),
            hint="evaluate both entries on the same benchmarks first (one folder, e.g. "
            "--systems vanilla,matrix)",
        )

    def stratum(pair: tuple[tuple[str, str], dict[str, Any]]) -> str | None:
        if not stratify:
            return None
        value = pair[1][entries[0]].metadata.get(stratify)
        return None if value in (None, "") else str(value)

    chosen = stratified_sample(both, n, stratum, seed=f"{seed}:humaneval")
    rng = random.Random(f"{seed}:humaneval:order")
    rows: list[Row] = []
    for index, ((bench, item_id), by) in enumerate(chosen, start=1):
        order = (entries[1], entries[0]) if blind and rng.random() < 0.5 else entries
        first = by[order[0]]
        rows.append(
            Row(
                row=index,
                benchmark=bench,
                item_id=item_id,
                category=stratum(((bench, item_id), by)) or "",
                prompt=first.prompt,
                answers=(by[order[0]], by[order[1]]),
                entries=order,
            )
        )
    return rows


def sheet_id(entries: tuple[str, str], rows: list[Row], blind: bool) -> str:
    data = [list(entries), blind, [[r.item_id, r.answers[0].id, r.answers[1].id] for r in rows]]
    return hashlib.sha256(json.dumps(data).encode("utf-8")).hexdigest()[:12]


def sheet_csv(sheet: str, rows: list[Row], blind: bool = True) -> str:
    """The rater's spreadsheet: every text column quoted, cells that could be formulas
    escaped (``cells.py``), rating and rater left blank; an unblinded sheet also names the
    entry behind each response."""
    from matrix_align.humaneval.cells import escape_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([*SHEET_COLUMNS, *(() if blind else ("entry_a", "entry_b"))])
    for r in rows:
        cells = [
            sheet,
            r.row,
            r.benchmark,
            r.category,
            r.prompt,
            r.answers[0].answer,
            r.answers[1].answer,
            "",
            "",
            "",
            *(() if blind else r.entries),
        ]
        writer.writerow([escape_cell("" if cell is None else str(cell)) for cell in cells])
    return buffer.getvalue()


def key_document(
    sheet: str, run: Path, entries: tuple[str, str], rows: list[Row], settings: dict[str, Any]
) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "sheet": sheet,
        "run": str(run.resolve()),
        "entries": list(entries),
        **settings,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": [
            {
                "row": r.row,
                "benchmark": r.benchmark,
                "item_id": r.item_id,
                "category": r.category,
                "a": r.entries[0],
                "b": r.entries[1],
                "answer_a": r.answers[0].id,
                "answer_b": r.answers[1].id,
            }
            for r in rows
        ],
    }


def export_sheet(
    run: Path,
    entries_text: str,
    *,
    n: int = 100,
    stratify: str | None = None,
    blind: bool = True,
    seed: int = 0,
    benchmarks: list[str] | None = None,
    subset: str | None = None,
    output: Path | None = None,
    title: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write the sheet of ``run``'s two entries; returns its folder and its key."""
    from matrix_align.folders import RESULTS
    from matrix_align.folders.results import current_answers, read_results
    from matrix_align.humaneval.form import render_form
    from matrix_align.io import atomic_write_json, atomic_write_text, writable_folder

    run = Path(run)
    if not (run / RESULTS).is_file():
        raise MatrixAlignError(
            f"{run} is not an evaluation folder (no {RESULTS}).",
            hint="pass the --output folder of `matrix-align evaluate` or `sweep`",
        )
    if n < 1:
        raise MatrixAlignError("--n must be at least 1.")
    answers = current_answers(read_results(run)[0])
    known = list(dict.fromkeys(a.entry for a in answers))
    entries = split_entries(entries_text, known)
    items = None
    if subset is not None:
        from matrix_align.evaluate.subsets import resolve

        items = resolve(subset, benchmarks)
    rows = pick_rows(
        answers,
        entries,
        n=n,
        stratify=stratify,
        seed=seed,
        blind=blind,
        benchmarks=benchmarks,
        items=items,
    )
    if stratify and not any(r.category for r in rows):
        raise MatrixAlignError(
            f"No chosen item has a {stratify!r} field to stratify over.",
            hint="fields of the items: "
            + ", ".join(sorted({k for a in answers for k in a.metadata})),
        )
    sheet = sheet_id(entries, rows, blind)
    folder = Path(output) if output is not None else run / SHEET_FOLDER / sheet
    writable_folder(folder / RATERS_FOLDER, "--output")
    (folder / RATINGS_FOLDER).mkdir(exist_ok=True)
    settings = {
        "blind": blind,
        "n_requested": n,
        "stratify": stratify,
        "seed": seed,
        "subset": subset,
        "benchmarks": benchmarks,
    }
    key = key_document(sheet, run, entries, rows, settings)
    atomic_write_json(folder / KEY_FILE, key)
    atomic_write_text(folder / RATERS_FOLDER / SHEET_CSV, sheet_csv(sheet, rows, blind))
    shown_entries = None if blind else entries
    atomic_write_text(
        folder / RATERS_FOLDER / FORM_HTML,
        render_form(sheet, rows, title=title, entries=shown_entries),
    )
    return folder, key
