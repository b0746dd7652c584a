"""Reading returned ratings: the form's download or the filled-in sheet.csv, checked against
the sheet's key.

A file is CSV with at least the columns ``sheet``, ``row`` and ``rating`` (A, B or tie, in any
case; a blank rating is an unrated row and is skipped); ``rater`` names the rater, and where
it is missing or blank the file's name does (one file per rater is the usual return). A
rating for another sheet, an unknown row or an unknown value is an error naming the file and
line, never a silently dropped vote. A rater who rated a row twice keeps the last rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.humaneval.cells import unescape_cell
from matrix_align.humaneval.sheet import KEY_FILE, RATINGS
from matrix_align.reading import csv_rows, read_text

REQUIRED = ("sheet", "row", "rating")
_ALIASES = {"a": "A", "b": "B", "tie": "tie", "=": "tie", "same": "tie"}


@dataclass(frozen=True)
class Rating:
    row: int
    rater: str
    rating: str  # A, B or tie: positions on the sheet, unblinded by the key
    comment: str = ""


def find_key(ratings: list[Path], sheet_folder: Path | None, run: Path | None) -> Path:
    """The sheet's key.json: in ``--sheet``; else in ``RUN/humaneval/<sheet id>`` (``--run``);
    else in a folder above the first ratings file (ratings kept in the sheet's ratings/)."""
    from matrix_align.humaneval.sheet import SHEET_FOLDER

    if sheet_folder is not None:
        key = Path(sheet_folder) / KEY_FILE
        if not key.is_file():
            raise MatrixAlignError(
                f"No {KEY_FILE} in {sheet_folder}.",
                hint="--sheet is the folder `humaneval export` wrote",
            )
        return key
    if run is not None:
        ids = {sheet for path in ratings for sheet in sheet_ids(path)}
        if len(ids) == 1:
            key = Path(run) / SHEET_FOLDER / ids.pop() / KEY_FILE
            if key.is_file():
                return key
    for parent in list(Path(ratings[0]).resolve().parents)[:4]:
        if (parent / KEY_FILE).is_file():
            return parent / KEY_FILE
    raise MatrixAlignError(
        "Cannot find the sheet's key.json for these ratings.",
        hint="keep the rating files in the sheet's ratings/ folder, or pass --sheet "
        "RUN/humaneval/<sheet id> (or --run RUN)",
    )


def _open_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        # A spreadsheet's BOM is not a column; a FIFO or a device is refused, not read.
        text = read_text(path, "Ratings file", encoding="utf-8-sig")
    except FileNotFoundError:
        raise MatrixAlignError(f"Ratings file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixAlignError(
            f"Ratings file {path} cannot be read as UTF-8 text ({exc}).",
            hint="save it as CSV UTF-8",
        ) from None
    header, found = csv_rows(text, f"Ratings file {path}")  # an answer may be a long field
    columns = [c.strip().lower() for c in header]
    # Cells escaped against formulas on export (or by the form) are read as they were.
    rows = [
        {(k or "").strip().lower(): unescape_cell(v or "") for k, v in row.items()} for row in found
    ]
    return columns, rows


def sheet_ids(path: Path) -> set[str]:
    _, rows = _open_rows(Path(path))
    return {row.get("sheet", "").strip() for row in rows if row.get("sheet", "").strip()}


def read_ratings(paths: list[Path], key: dict[str, Any]) -> list[Rating]:
    """Every rating of ``paths`` for the sheet ``key`` describes (see the module docstring)."""
    n_rows = len(key.get("rows") or [])
    latest: dict[tuple[str, int], Rating] = {}
    for path in paths:
        path = Path(path)
        columns, rows = _open_rows(path)
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise MatrixAlignError(
                f"Ratings file {path} has no {', '.join(missing)} column.",
                hint="return the form's download, or sheet.csv with the rating column filled",
            )
        for line, row in enumerate(rows, start=2):  # line 1 is the header
            value = row.get("rating", "").strip()
            if not value:
                continue
            where = f"{path}, line {line}"
            if row.get("sheet", "").strip() != key["sheet"]:
                raise MatrixAlignError(
                    f"{where}: a rating of sheet {row.get('sheet')!r}, not {key['sheet']}.",
                    hint="import each sheet's ratings with that sheet's key (--sheet)",
                )
            try:
                number = int(row.get("row", "").strip())
            except ValueError:
                number = 0
            if not 1 <= number <= n_rows:
                raise MatrixAlignError(
                    f"{where}: row {row.get('row')!r} is not on the sheet (1-{n_rows})."
                )
            rating = _ALIASES.get(value.lower())
            if rating not in RATINGS:
                raise MatrixAlignError(f"{where}: rating {value!r} is not A, B or tie.")
            rater = row.get("rater", "").strip() or path.stem
            latest[(rater, number)] = Rating(number, rater, rating, row.get("comment", "").strip())
    if not latest:
        raise MatrixAlignError(
            "The ratings files hold no rating.", hint="a rating is A, B or tie in the rating column"
        )
    return sorted(latest.values(), key=lambda r: (r.row, r.rater))
