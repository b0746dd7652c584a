"""``humaneval export`` and ``import``: a blinded, stratified sheet whose raters' files name
no entry, ratings unblinded with the key, tallies with intervals and agreement in the report."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.humaneval.sheet import export_sheet, split_entries
from tests.conftest import run_main


def sheet_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "for-raters" / "sheet.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_ratings(path: Path, rows: list[dict[str, str]], rater: str, ratings: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "row", "rater", "rating", "comment"])
        for row, rating in zip(rows, ratings, strict=True):
            writer.writerow([row["sheet"], row["row"], rater, rating, ""])


def test_export_is_blind_stratified_and_reproducible(eval_folder: Path) -> None:
    folder, key = export_sheet(eval_folder, "matrix,vanilla", n=8, stratify="category")
    assert folder == eval_folder / "humaneval" / key["sheet"]
    assert len(key["rows"]) == 8
    assert len(Counter(r["category"] for r in key["rows"])) == 8  # one per harm category
    assert {r["a"] for r in key["rows"]} == {"matrix", "vanilla"}  # both orders occur
    for name in ("sheet.csv", "form.html"):
        text = (folder / "for-raters" / name).read_text("utf-8")
        assert "matrix" not in text.lower().replace("matrix-align", "")
        assert "vanilla" not in text and str(eval_folder) not in text
    rows = sheet_rows(folder)
    by_row = {r["row"]: r for r in key["rows"]}
    answers = {
        json.loads(line)["id"]: json.loads(line)
        for line in (eval_folder / "results.jsonl").read_text().splitlines()
    }
    for row in rows:
        assert row["response_a"] == answers[by_row[int(row["row"])]["answer_a"]]["answer"]
    again, key2 = export_sheet(eval_folder, "matrix,vanilla", n=8, stratify="category")
    assert key2["rows"] == key["rows"] and again == folder
    _, open_key = export_sheet(eval_folder, "matrix,vanilla", n=4, blind=False)
    assert all(r["a"] == "matrix" for r in open_key["rows"])
    opened = eval_folder / "humaneval" / open_key["sheet"] / "for-raters" / "sheet.csv"
    assert "entry_a" in opened.read_text("utf-8").splitlines()[0]


def test_export_errors(eval_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="not two different entries"):
        export_sheet(eval_folder, "matrix,critique-revise")
    with pytest.raises(MatrixAlignError, match="No chosen item has a 'color' field"):
        export_sheet(eval_folder, "matrix,vanilla", stratify="color")
    with pytest.raises(MatrixAlignError, match="not an evaluation folder"):
        export_sheet(tmp_path, "a,b")
    with pytest.raises(MatrixAlignError, match="No item has answers"):
        export_sheet(eval_folder, "matrix,vanilla", benchmarks=["advbench"])


def test_entry_names_with_commas_split_where_both_sides_are_entries() -> None:
    known = ["vanilla", "matrix@roles=1,steps=2", "matrix@roles=3,steps=2"]
    assert split_entries("matrix@roles=1,steps=2,vanilla", known) == (
        "matrix@roles=1,steps=2",
        "vanilla",
    )


def test_import_tallies_into_the_report(eval_folder: Path, monkeypatch, capsys) -> None:
    code, text = run_main(
        monkeypatch,
        capsys,
        "humaneval",
        "export",
        str(eval_folder),
        "--entries",
        "matrix,vanilla",
        "--n",
        "8",
        "--stratify",
        "category",
        "--blind",
    )
    assert code == 0, text
    folder = next((eval_folder / "humaneval").iterdir())
    key = json.loads((folder / "key.json").read_text())
    rows = sheet_rows(folder)
    # Both raters prefer matrix on every row but the last, which one calls a tie.
    prefer = ["A" if r["a"] == "matrix" else "B" for r in key["rows"]]
    write_ratings(folder / "ratings" / "alice.csv", rows, "alice", prefer)
    write_ratings(folder / "ratings" / "bob.csv", rows, "bob", [*prefer[:-1], "tie"])
    code, text = run_main(monkeypatch, capsys, "humaneval", "import", str(folder / "ratings"))
    assert code == 0, text
    assert "16 ratings, 8 items: matrix win 94%" in text
    result = json.loads((eval_folder / "humaneval.json").read_text())["sheets"][key["sheet"]]
    overall = result["overall"]
    assert (overall["win"]["count"], overall["tie"]["count"], overall["lose"]["count"]) == (
        15,
        1,
        0,
    )
    assert overall["win"]["low"] < 15 / 16 <= overall["win"]["high"]
    assert result["agreement"]["raters"] == 2
    assert result["agreement"]["alpha_nominal"] is not None
    assert set(result["by_category"]) == {r["category"] for r in key["rows"]}
    report = (eval_folder / "report.md").read_text()
    assert "## Human evaluation" in report and "| all | 16 | 94 [" in report
    # The section survives a rebuild of the report by evaluate.
    from matrix_align.evaluate.report import write_report

    assert "## Human evaluation" in write_report(eval_folder).read_text()


def test_bad_ratings_are_clear_errors(eval_folder: Path, monkeypatch, capsys, tmp_path) -> None:
    folder, key = export_sheet(eval_folder, "matrix,vanilla", n=4)
    rows = sheet_rows(folder)
    bad = folder / "ratings" / "x.csv"
    write_ratings(bad, rows, "x", ["A", "B", "maybe", "A"])
    code, text = run_main(monkeypatch, capsys, "humaneval", "import", str(bad))
    assert code == 2 and "line 4: rating 'maybe' is not A, B or tie" in text
    elsewhere = tmp_path / "ratings.csv"
    write_ratings(elsewhere, rows, "x", ["A", "B", "tie", "A"])
    code, text = run_main(monkeypatch, capsys, "humaneval", "import", str(elsewhere))
    assert code == 2 and "Cannot find the sheet's key.json" in text
    code, text = run_main(
        monkeypatch, capsys, "humaneval", "import", str(elsewhere), "--run", str(eval_folder)
    )
    assert code == 0, text
    other = tmp_path / "other.csv"
    other.write_text("sheet,row,rating\nffffffffffff,1,A\n")
    code, text = run_main(
        monkeypatch, capsys, "humaneval", "import", str(other), "--sheet", str(folder)
    )
    assert code == 2 and "a rating of sheet 'ffffffffffff'" in text


def test_a_long_field_is_read_and_a_fifo_is_refused(
    eval_folder: Path, monkeypatch, capsys, tmp_path
) -> None:
    folder, key = export_sheet(eval_folder, "matrix,vanilla", n=4)
    rows = sheet_rows(folder)
    long = folder / "ratings" / "long.csv"
    write_ratings(long, rows, "x", ["A", "B", "tie", "A"])
    long.write_text(long.read_text("utf-8").replace(",\n", "," + "w" * 200_000 + "\n", 1))
    code, text = run_main(monkeypatch, capsys, "humaneval", "import", str(long))
    assert code == 0, text  # over csv's default field limit (131,072 characters)
    if hasattr(os, "mkfifo"):  # would block forever if it were read
        os.mkfifo(tmp_path / "pipe.csv")
        code, text = run_main(monkeypatch, capsys, "humaneval", "import",
                              str(tmp_path / "pipe.csv"), "--sheet", str(folder))  # fmt: skip
        assert code == 2 and "is a FIFO (named pipe), not a file" in text, text
