"""``matrix-align export``: (re-)write the TRL exports of a generate run folder.

``generate`` already exports at the end of each run; this command chooses formats and file
types, adds or drops the scene sub-steps, drops traces for a smaller dataset, or writes the
exports elsewhere. It reads ``samples.jsonl`` only, so it is safe to run while a generate
run is still appending (it sees the samples finished so far).

``--drop-flagged`` leaves out the samples the scene audit flagged; its default is the
audit's ``DROP_BY_DEFAULT``, and the help text lists those flags from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli.options import path_value
from matrix_align.folders import RUN, SAMPLES, SUMMARY
from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAGS

DROP_HELP = (
    "Leave out the matrix samples the scene audit flagged with any of these flags "
    "(comma-separated), from every format. Default: "
    + ", ".join(DROP_BY_DEFAULT)
    + ": the flags that make the (query, answer) row wrong as training data (an unsafe "
    "answer to a harmful query, a refusal of a harmless one, an answer worse than the "
    "model's first, an empty one, or one that talks about the simulation). 'none' keeps "
    "every row. Known flags: " + ", ".join(FLAGS) + ". Whatever is dropped, a sample whose "
    "answer complies with a harmful query or is worse than the first answer never becomes a "
    "preference pair."
)


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


def _run_seed(folder: Path) -> int:
    """The simulation seed a generate folder was made with (run.json), else 0."""
    import json

    try:
        seed = json.loads((folder / RUN).read_text("utf-8"))["config"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


RunFolder = Annotated[
    Path,
    typer.Argument(parser=path_value, help="A generate --output folder (or its samples.jsonl)."),
]
Dest = Annotated[
    Path | None,
    typer.Option("--to", parser=path_value, help="Destination folder (default: RUN/exports)."),
]
Formats = Annotated[
    list[str] | None,
    typer.Option(
        "--format",
        "-f",
        help="prompt-completion, messages, preference "
        "(repeatable or comma-separated; default: all).",
    ),
]
FileTypes = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        "-t",
        help="jsonl, parquet, hf (a datasets save_to_disk folder); default: all.",
    ),
]
IncludeSubsteps = Annotated[
    bool,
    typer.Option(
        "--include-substeps",
        help="Add each scene call of the simulation itself (set-up, roles, actions, "
        "reactions, modulator, memory, consequence; valid first attempts only) as a prompt "
        "-> output training row to the SFT formats.",
    ),
]
Substeps = Annotated[
    int | None,
    typer.Option(
        "--substeps",
        min=1,
        metavar="N",
        help="Add at most N of those sub-step rows in all, a uniform sample seeded by "
        "--seed (implies --include-substeps).",
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Seed of the --substeps sample (default: the --seed the run was generated "
        "with, from its run.json, so export draws the same sample generate did; else 0).",
    ),
]
Traces = Annotated[
    bool,
    typer.Option(
        "--traces/--no-traces",
        help="Keep the scene trace JSON in the "
        "trace column (--no-traces leaves it empty: much smaller files).",
    ),
]
DropFlagged = Annotated[
    str | None,
    typer.Option("--drop-flagged", metavar="FLAG,...|none", help=DROP_HELP),
]
PushToHub = Annotated[
    str | None,
    typer.Option(
        "--push-to-hub",
        metavar="OWNER/NAME",
        help="Then push the export, with a generated dataset card (sources, licences, "
        "model, settings, counts, audit), to this Hugging Face dataset repository.",
    ),
]
Private = Annotated[
    bool, typer.Option("--private", help="With --push-to-hub: make a new repository private.")
]


def export(
    run: RunFolder,
    dest: Dest = None,
    formats: Formats = None,
    file_types: FileTypes = None,
    include_substeps: IncludeSubsteps = False,
    substeps: Substeps = None,
    seed: Seed = None,
    traces: Traces = True,
    drop_flagged: DropFlagged = None,
    push_to_hub: PushToHub = None,
    private: Private = False,
) -> None:
    """Write TRL-ready datasets (prompt-completion, messages, preference) from a run."""
    from rich.console import Console

    from matrix_align.data.export import EXPORT_DIR, FILE_TYPES, export_samples, parse_drop_flags
    from matrix_align.data.records import EXPORT_FORMATS
    from matrix_align.hub import check_push_options
    from matrix_align.io import writable_folder

    check_push_options(push_to_hub, private=private)
    samples = run if run.is_file() else run / SAMPLES
    folder = samples.parent
    chosen_formats = _split_list(formats, EXPORT_FORMATS, "format")
    chosen_types = _split_list(file_types, FILE_TYPES, "file type")
    drop = parse_drop_flags(drop_flagged)
    if samples.is_file():  # else export_samples says there is nothing to export
        writable_folder(dest or folder / EXPORT_DIR, "--to")
    result = export_samples(
        samples, dest or folder / EXPORT_DIR, formats=chosen_formats, file_types=chosen_types,
        include_substeps=include_substeps, with_traces=traces, drop_flagged=drop,
        substeps=substeps, substep_seed=seed if seed is not None else _run_seed(folder),
    )  # fmt: skip
    console = Console(stderr=True)
    _print_result(console, result, drop, chosen_formats)
    if push_to_hub is not None:
        from matrix_align.hub import push_dataset

        url = push_dataset(
            dest or folder / EXPORT_DIR, push_to_hub, private=private,
            summary=_run_summary(folder), files=result.files,
        )  # fmt: skip
        console.print(f"pushed to {url}", highlight=False)


def _run_summary(folder: Path) -> dict:
    """The run's summary.json for the dataset card ({} for a bare samples.jsonl: the card
    says less)."""
    import json

    try:
        return json.loads((folder / SUMMARY).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _print_result(console: Any, result: Any, drop: list[str], formats: list[str]) -> None:
    """What was written, dropped and withheld."""
    for fmt, paths in result.files.items():
        shown = ", ".join(str(p) for p in paths.values())
        console.print(f"{fmt}: {result.rows[fmt]} rows -> {shown}", highlight=False)
    if result.dropped:
        each = ", ".join(f"{flag} {n}" for flag, n in result.dropped_by_flag.items())
        console.print(
            f"dropped {result.dropped} flagged sample(s) from every format ({each})",
            highlight=False,
        )
    else:
        shown = ", ".join(drop) or "none"
        console.print(f"dropped no sample (--drop-flagged {shown})", highlight=False)
    if result.pairs_withheld and "preference" in formats:
        console.print(
            f"preference: {result.pairs_withheld} pair(s) withheld: the final answer complies "
            "with a harmful query or is worse than the first answer",
            highlight=False,
        )
    if result.substeps is not None:
        from matrix_align.data.substeps import describe

        console.print(describe(result.substeps), highlight=False)
    if result.skipped:
        console.print(
            f"[yellow]note:[/] skipped {result.skipped} line(s) that are not sample records",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("export", epilog=EXIT_CODES_HELP)(export)
