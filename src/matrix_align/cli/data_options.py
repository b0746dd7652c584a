"""The data-selection options, each declared once (``cli/option_groups.py``): ``--limit``,
``--shuffle`` and ``--hub`` of every command that picks items from built-in data (evaluate,
sweep, generate), in the command's own help panel; and ``BenchmarkData``, the whole group of
evaluate and sweep (a sweep's cells are evaluate entries), with ``--benchmarks``,
``--subset`` and ``--epochs`` besides.

``--limit`` is a number of items, or a fraction of those available, as inspect's and lm-eval's
users size a quick run (``0.1``: a tenth of each benchmark, whatever its size;
``data.sources.limit_count``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from matrix_align.cli.judge_options import split_values
from matrix_align.cli.option_groups import OptionGroup

if TYPE_CHECKING:
    from matrix_align.data.sources import Limit

BENCH = "Benchmarks"  # evaluate's and sweep's panel


def limit_option(what: str, panel: str) -> Any:
    """The ``--limit`` option of a command, ``what`` saying what it counts."""
    return Annotated[
        float | None,  # int or float: limit_value tells a count from a fraction
        typer.Option(
            "--limit",
            parser=limit_value,
            metavar="N",
            help=f"{what}: a count, or a fraction of them (0.1: a tenth).",
            rich_help_panel=panel,
        ),
    ]


def shuffle_option(panel: str) -> Any:
    """The ``--shuffle`` option (default False)."""
    return Annotated[
        bool,
        typer.Option(
            "--shuffle",
            help="A seeded random subset (--seed) instead of the first items.",
            rich_help_panel=panel,
        ),
    ]


def hub_option(what: str, panel: str) -> Any:
    """The ``--hub`` option (default ``auto``), ``what`` naming the data it reads: a
    command's words for them differ (benchmarks, built-in sources)."""
    return Annotated[
        str,
        typer.Option(
            "--hub",
            help=f"{what} from the Hugging Face hub: auto (when reachable, else the shipped "
            "sample), never, always.",
            rich_help_panel=panel,
        ),
    ]


def check_hub(hub: str) -> None:
    """Refuse a ``--hub`` policy other than auto, never and always."""
    from matrix_align.data.sources import HUB_POLICIES
    from matrix_align.errors import MatrixAlignError

    if hub not in HUB_POLICIES:
        raise MatrixAlignError(f"Unknown --hub {hub!r}.", hint="auto, never or always")


def limit_value(value: str | Limit) -> Limit:
    """A whole number from 1 (a count), or a number between 0 and 1 (a fraction)."""
    if not isinstance(value, str):  # a default, already converted
        return value
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if 0 < number < 1:
        return number
    if number >= 1 and number.is_integer():
        return int(number)
    raise typer.BadParameter(
        f"{value!r} is neither a count (a whole number from 1) nor a fraction (between 0 "
        "and 1, e.g. 0.1 for a tenth)"
    )


BenchLimit = limit_option("Items per benchmark", BENCH)
BenchShuffle = shuffle_option(BENCH)
BenchHub = hub_option("Benchmarks", BENCH)


@dataclass(kw_only=True)
class BenchmarkData(OptionGroup):
    """Which benchmarks and items, and how many answers to each (evaluate's and sweep's)."""

    benchmarks: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmarks",
            "-B",
            help="Benchmarks, comma-separated or repeated (see `evaluate --list`; inspect's "
            "spelling hh_harmless and inspect_evals' strong_reject work too). Default: the "
            "paper's four, hh-harmless,pku-saferlhf,advbench,harmfulqa, or the subset's.",
            rich_help_panel=BENCH,
        ),
    ] = None
    limit: BenchLimit = None
    subset: Annotated[
        str | None,
        typer.Option(
            "--subset",
            help="A pinned item list, so two runs compare on the same items: a shipped "
            "subset (quick, paper-50, pku-human-eval; see `evaluate --list`) or a manifest "
            ".json file. Items come from the shipped samples (--hub does not apply); "
            "--benchmarks keeps some of the subset's benchmarks, --limit the first N items of "
            "each.",
            rich_help_panel=BENCH,
        ),
    ] = None
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            min=1,
            max=100,
            help="Answers per item and entry (a system, or a sweep's cell), each with its own "
            "seed derived from --seed; every answer is judged and rates are over all of them "
            "(the intervals still count items, not answers). The report adds how many items "
            "got the same refusal decision at every sample.",
            rich_help_panel=BENCH,
        ),
    ] = 1
    shuffle: BenchShuffle = False
    hub: BenchHub = "auto"

    def items(self) -> tuple[list[str] | None, float | None, Any]:
        """(benchmark names, --limit, pinned items): a --subset names the items, and --limit
        takes a prefix of its lists. Names in inspect's or inspect_evals' spelling
        (``hh_harmless``, ``strong_reject``) are the project's."""
        from matrix_align.data.sources import source_name

        check_hub(self.hub)
        given = split_values(self.benchmarks)
        names = None if given is None else [source_name(name) for name in given]
        if self.subset is None:
            return names, self.limit, None
        from matrix_align.evaluate.subsets import resolve

        items = resolve(self.subset, names, self.limit)
        return list(items), None, items
