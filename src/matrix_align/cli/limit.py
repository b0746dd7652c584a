"""``--limit``, in every command that has it (evaluate, sweep, generate): a number of items,
or a fraction of those available, as inspect's and lm-eval's users size a quick run
(``0.1``: a tenth of each benchmark, whatever its size; ``data.sources.limit_count``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from matrix_align.data.sources import Limit


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
