"""``matrix-align export``: (re-)write the TRL exports of a generate run folder.

``generate`` already exports at the end of each run; this command chooses formats and file
types, adds or drops the scene sub-steps, drops traces for a smaller dataset, or writes the
exports elsewhere. It reads ``samples.jsonl`` only, so it is safe to run while a generate
run is still appending (it sees the samples finished so far).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _split_list(values: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str]:
    from matrix_align.errors import MatrixAlignError

    if not values:
        return list(allowed)
    chosen: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().replace("-", "_") if what == "format" else part.strip()
            if not part:
                continue
            if part not in allowed:
                raise MatrixAlignError(
                    f"Unknown {what} {part!r}.", hint=f"choose from: {', '.join(allowed)}"
                )
            if part not in chosen:
                chosen.append(part)
    return chosen


def export(
    run: Annotated[Path, typer.Argument(help="A generate --output folder (or its samples.jsonl).")],
    dest: Annotated[
        Path | None,
        typer.Option("--to", help="Destination folder (default: RUN/exports)."),
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="prompt-completion, messages, preference "
            "(repeatable or comma-separated; default: all).",
        ),
    ] = None,
    file_types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            help="jsonl, parquet, hf (a datasets save_to_disk folder); default: all.",
        ),
    ] = None,
    include_substeps: Annotated[
        bool,
        typer.Option(
            "--include-substeps",
            help="Add each scene call (prompt -> output) as a training row to the SFT formats.",
        ),
    ] = False,
    traces: Annotated[
        bool,
        typer.Option(
            "--traces/--no-traces",
            help="Keep the scene trace JSON in the "
            "trace column (--no-traces leaves it empty: much smaller files).",
        ),
    ] = True,
) -> None:
    """Write TRL-ready datasets (prompt-completion, messages, preference) from a run."""
    from rich.console import Console

    from matrix_align.data.export import EXPORT_DIR, FILE_TYPES, export_samples
    from matrix_align.data.records import EXPORT_FORMATS

    samples = run if run.is_file() else run / "samples.jsonl"
    folder = samples.parent
    chosen_formats = _split_list(formats, EXPORT_FORMATS, "format")
    chosen_types = _split_list(file_types, FILE_TYPES, "file type")
    result = export_samples(
        samples,
        dest or folder / EXPORT_DIR,
        formats=chosen_formats,
        file_types=chosen_types,
        include_substeps=include_substeps,
        with_traces=traces,
    )
    console = Console(stderr=True)
    for fmt, paths in result.files.items():
        shown = ", ".join(str(p) for p in paths.values())
        console.print(f"{fmt}: {result.rows[fmt]} rows -> {shown}", highlight=False)
    if result.skipped:
        console.print(
            f"[yellow]note:[/] skipped {result.skipped} line(s) that are not sample records",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
