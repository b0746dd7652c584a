"""``matrix-align import``: a FastChat/ShareGPT file (the MATRIX authors' released data, say)
as sample records and TRL exports, so ``export`` and ``train`` work on it as on a ``generate``
folder. The module is ``import_`` because ``import`` is a Python keyword; the command is
``import``. The work is ``data.importer``; this module parses options and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matrix_align.cli.options import path_value

ChatFile = Annotated[
    Path,
    typer.Argument(
        parser=path_value,
        help="A FastChat/ShareGPT file: a .json list of {id, conversations: [{from, "
        "value}, ...]} (the authors' matrix_data.json) or .jsonl, one per line; "
        "{role, content} turns under 'messages' are read too.",
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        parser=path_value,
        help="New folder for samples.jsonl, run.json, summary.json and exports/ (as a "
        "generate folder has them).",
    ),
]
Turns = Annotated[
    str,
    typer.Option(
        "--turns",
        help="Multi-turn conversations: 'each' (one sample per assistant answer, the "
        "conversation before it as the prompt: every answer is learnt, as FastChat "
        "trains) or 'last' (one sample per conversation: its last answer).",
    ),
]
SourceName = Annotated[
    str | None,
    typer.Option(
        "--source-name",
        help="The samples' source name (counted in model cards); default import:FILE.",
    ),
]
Export = Annotated[
    bool,
    typer.Option(
        "--export/--no-export",
        help="Write exports/ (JSONL, Parquet, datasets folder) as generate does.",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an earlier import in --output."),
]


def import_command(
    file: ChatFile,
    output: Output = None,
    turns: Turns = "each",
    source_name: SourceName = None,
    export: Export = True,
    overwrite: Overwrite = False,
) -> None:
    """Import chat data (FastChat/ShareGPT, e.g. the MATRIX authors' release) as samples.

    Example: matrix-align import matrix_data.json --output runs/authors, then
    matrix-align train --data runs/authors --preset paper-13b --output runs/wv13b
    """
    from rich.console import Console

    from matrix_align.data.importer import TURN_MODES, import_conversations
    from matrix_align.errors import MatrixAlignError

    if output is None:
        raise MatrixAlignError("import needs --output FOLDER.", hint="e.g. --output runs/authors")
    if turns not in TURN_MODES:
        raise MatrixAlignError(f"Unknown --turns {turns!r}.", hint=" or ".join(TURN_MODES))
    console = Console(stderr=True)
    result = import_conversations(
        file,
        output,
        turns=turns,
        source=source_name,
        overwrite=overwrite,
        export=export,
        log=lambda message: console.print(f"[dim]{message}[/]", highlight=False),
    )
    console.print(
        f"imported {result.samples} samples from {result.conversations} conversations "
        f"into {output / 'samples.jsonl'} (source {result.source}, --turns {turns})",
        highlight=False,
    )
    if result.without_answer:
        console.print(
            f"[yellow]note:[/] {result.without_answer} conversation(s) had no answer to learn",
            highlight=False,
        )
    for reason, count in result.skipped.items():
        console.print(f"[yellow]note:[/] {count} assistant turn(s) skipped: {reason}",
                      highlight=False)  # fmt: skip
    if result.exports:
        rows = ", ".join(f"{fmt} {n}" for fmt, n in result.exports.items())
        console.print(f"exports: {output / 'exports'} (jsonl, parquet, hf): {rows} rows",
                      highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("import", epilog=EXIT_CODES_HELP)(import_command)
