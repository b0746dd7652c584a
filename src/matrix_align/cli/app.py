"""The ``matrix-align`` command. Each sub-command lives in its own module beside this one and
exposes ``register(app)``; modules import heavy libraries inside their command functions, so
``matrix-align --help`` stays fast."""

from __future__ import annotations

import importlib
import sys

import typer

from matrix_align.errors import MatrixAlignError

COMMAND_MODULES = ("simulate", "generate", "export", "train", "evaluate", "view")

app = typer.Typer(
    name="matrix-align",
    help="Align LLMs by social scene simulation (MATRIX): simulate, generate, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root() -> None:
    """Align LLMs by social scene simulation (MATRIX): simulate, generate, train, evaluate."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"matrix_align.cli.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"matrix_align.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Entry point: user mistakes become one clear message and exit code 2, never a traceback."""
    try:
        app()
    except MatrixAlignError as exc:
        from rich.console import Console

        console = Console(stderr=True, soft_wrap=True)  # keep messages greppable: no wrapping
        console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
