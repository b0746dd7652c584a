"""``matrix-align humaneval``: human ratings of two entries of an evaluation folder.

``export`` writes a rating sheet (CSV and an offline HTML form) and its key; ``import`` reads
the returned ratings and adds win / tie / lose with intervals and rater agreement to the
folder's report. The work is ``matrix_align.humaneval``; this module parses options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matrix_align.cli import options as o

app = typer.Typer(
    name="humaneval",
    help="Human evaluation: export a blinded rating sheet of two entries, import the ratings.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


EvalFolder = Annotated[
    Path,
    typer.Argument(
        parser=o.path_value, help="An evaluate (or sweep) output folder.", show_default=False
    ),
]
Entries = Annotated[
    str,
    typer.Option(
        "--entries",
        help="The two entries to compare, FIRST,SECOND (e.g. matrix,vanilla). Results "
        "are read from FIRST's side: win = FIRST rated better.",
        show_default=False,
    ),
]
N = Annotated[int, typer.Option("--n", min=1, help="Items on the sheet (at most).")]
Stratify = Annotated[
    str | None,
    typer.Option(
        "--stratify",
        help="An item field to stratify the sample over, e.g. category (PKU-SafeRLHF's "
        "harm categories), topic (HarmfulQA). Default: a plain seeded sample.",
    ),
]
Blind = Annotated[
    bool,
    typer.Option(
        "--blind/--no-blind",
        help="Hide which entry wrote which response and put each pair in a random "
        "order; the key stays out of the raters' files.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sample and the order.")]
Benchmarks = Annotated[
    str | None,
    typer.Option("--benchmarks", "-B", help="Only these benchmarks, comma-separated."),
]
Subset = Annotated[
    str | None,
    typer.Option(
        "--subset",
        help="Only the items of a pinned subset (e.g. pku-human-eval), in its order.",
    ),
]
Title = Annotated[str | None, typer.Option("--title", help="Heading of the form.")]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        parser=o.path_value,
        help="The sheet's folder. Default: RUN/humaneval/<sheet id>.",
    ),
]


@app.command("export")
def export(
    run: EvalFolder,
    entries: Entries,
    n: N = 100,
    stratify: Stratify = None,
    blind: Blind = True,
    seed: Seed = 0,
    benchmarks: Benchmarks = None,
    subset: Subset = None,
    title: Title = None,
    output: Output = None,
) -> None:
    """Write a rating sheet comparing two entries: for-raters/sheet.csv and
    for-raters/form.html (works offline, saves ratings to a file by a download) to send to
    raters, and key.json (which entry is A and B on each row) to keep.

    Example: matrix-align humaneval export runs/eval --entries matrix,vanilla --n 100
    --stratify category --blind
    """
    from matrix_align.humaneval.sheet import export_sheet

    chosen = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else None
    folder, key = export_sheet(
        run, entries, n=n, stratify=stratify, blind=blind, seed=seed, benchmarks=chosen,
        subset=subset, output=output, title=title,
    )  # fmt: skip
    _print_sheet(folder, key, n=n, blind=blind)


def _print_sheet(folder: Path, key: dict, *, n: int, blind: bool) -> None:
    """Where the sheet is, what to send and what to keep."""
    from rich.console import Console

    from matrix_align.humaneval.sheet import FORM_HTML, RATERS_FOLDER, RATINGS_FOLDER, SHEET_CSV

    console = Console(stderr=True)
    rows = key["rows"]
    shown = f"{len(rows)} items" + (
        f" (of {n} asked: fewer were answered by both)" if len(rows) < n else ""
    )
    console.print(
        f"sheet {key['sheet']}: {shown}, {'blind' if blind else 'not blind'}", highlight=False
    )
    console.print(
        f"send to raters: {folder / RATERS_FOLDER / FORM_HTML} (or {SHEET_CSV} beside it)",
        highlight=False,
    )
    console.print(
        f"keep: {folder / 'key.json'}; put returned files in "
        f"{folder / RATINGS_FOLDER}, then run `matrix-align humaneval import "
        f"{folder / RATINGS_FOLDER}/*.csv`",
        highlight=False,
    )


Ratings = Annotated[
    list[Path],
    typer.Argument(
        help="Returned rating files: the form's downloads, or filled-in sheet.csv files.",
        show_default=False,
    ),
]
Sheet = Annotated[
    Path | None,
    typer.Option(
        "--sheet",
        parser=o.path_value,
        help="The sheet's folder (with key.json). Default: found from the ratings' "
        "location, or from --run and the sheet id in the ratings.",
    ),
]
RunOption = Annotated[
    Path | None,
    typer.Option(
        "--run",
        parser=o.path_value,
        help="The evaluation folder the sheet was made from (default: the key's).",
    ),
]


@app.command("import")
def import_(
    ratings: Ratings,
    sheet: Sheet = None,
    run: RunOption = None,
) -> None:
    """Tally returned ratings: win / tie / lose of the first entry with Wilson intervals
    (overall, per stratum, per rater) and rater agreement (Krippendorff's alpha); written to
    RUN/humaneval.json and a section of RUN/report.md.

    Example: matrix-align humaneval import runs/eval/humaneval/<sheet id>/ratings/*.csv
    """
    from matrix_align.errors import MatrixAlignError
    from matrix_align.folders import RESULTS
    from matrix_align.humaneval.ratings import find_key, read_ratings
    from matrix_align.humaneval.tally import tally, write_results
    from matrix_align.io import read_json_object

    # A folder stands for the CSV files in it (the sheet's ratings/ folder, say).
    ratings = [f for p in ratings for f in (sorted(p.glob("*.csv")) if p.is_dir() else [p])]
    if not ratings:
        raise MatrixAlignError("No ratings file given (the folder holds no .csv file).")
    key_path = find_key(ratings, sheet, run)
    key = read_json_object(key_path, "Sheet key")
    target = run
    if target is None:
        # The sheet's usual place is RUN/humaneval/<id>; else the folder the key names.
        above = key_path.parent.parent.parent
        target = above if (above / RESULTS).is_file() else Path(str(key.get("run") or ""))
    if not (target / RESULTS).is_file():
        raise MatrixAlignError(
            f"Cannot find the evaluation folder of sheet {key.get('sheet')} ({target}).",
            hint="pass it with --run",
        )
    result = tally(read_ratings(ratings, key), key)
    path, _ = write_results(target, result)
    _print_tally(result, path, target)


def _print_tally(result: dict, path: Path, target: Path) -> None:
    """Win / tie / lose of the first entry, the raters' agreement, and where it is written."""
    from rich.console import Console

    o_ = result["overall"]
    console = Console(stderr=True)
    first = result["entries"][0]
    console.print(
        f"{o_['n']} ratings, {o_['items']} items: {first} win "
        f"{100 * (o_['win']['share'] or 0):.0f}%, tie {100 * (o_['tie']['share'] or 0):.0f}%, "
        f"lose {100 * (o_['lose']['share'] or 0):.0f}%",
        highlight=False,
    )
    alpha = result["agreement"]["alpha_ordinal"]
    console.print(
        "agreement (Krippendorff's alpha, ordinal): "
        + (
            "undefined (needs items rated by two or more raters, with some variation)"
            if alpha is None
            else f"{alpha:.2f}"
        ),
        highlight=False,
    )
    console.print(
        f"written: {path} and the Human evaluation section of {target / 'report.md'}",
        highlight=False,
    )


def register(root: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.info.epilog = EXIT_CODES_HELP
    root.add_typer(app, name="humaneval")
