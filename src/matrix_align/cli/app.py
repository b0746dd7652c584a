"""The ``matrix-align`` command. Each sub-command lives in its own module beside this one and
exposes ``register(app)``; modules import heavy libraries inside their command functions, so
``matrix-align --help`` stays fast."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from matrix_align.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, MatrixAlignError

# ``import_``: the ``import`` command (``import`` is a Python keyword).
COMMAND_MODULES = (
    "simulate", "generate", "import_", "export", "train", "evaluate", "sweep", "humaneval",
    "view", "serve",
)  # fmt: skip

app = typer.Typer(
    name="matrix-align",
    help="Align LLMs by social scene simulation (MATRIX): simulate, generate, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from matrix_align import __version__

        typer.echo(f"matrix-align {__version__}")
        raise typer.Exit()


@app.callback(epilog=EXIT_CODES_HELP)
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,  # answered before any sub-command is parsed
            help="Print matrix-align's version and exit.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log what happens on stderr (same as --log-level info)."
        ),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="Log on stderr at this level: debug, info, warning, error (default: warning; "
            "secrets in URLs are masked). Goes before the command: matrix-align -v generate ...",
        ),
    ] = None,
) -> None:
    """Align LLMs by social scene simulation (MATRIX): simulate, generate, train, evaluate."""
    from matrix_align.logs import LEVELS, setup_logging

    level = (log_level or ("info" if verbose else "warning")).lower()
    if level not in LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LEVELS)}",
                                 param_hint="--log-level")  # fmt: skip
    if level != "warning":  # else Python's default: warnings and errors, as they come
        setup_logging(level)


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"matrix_align.cli.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"matrix_align.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Entry point: user mistakes become one clear message and a non-zero exit code (see
    ``errors.EXIT_CODES_HELP``), never a traceback."""
    try:
        app()
    except MatrixAlignError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        _exit_without_waiting_for_threads(EXIT_INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # how typer ends a command on KeyboardInterrupt
            _exit_without_waiting_for_threads(EXIT_INTERRUPTED)
        raise


# The worker threads of the embedded llama.cpp model (llm/embedded.py names them so).
_MODEL_THREADS = "matrix-align-llama"


def _exit_without_waiting_for_threads(code: int) -> None:
    """Exit now when a model call on a worker thread would hold the exit. A call running in
    the embedded llama.cpp model cannot be interrupted, and Python waits for its thread,
    and the calls queued behind it, before it exits: after Ctrl-C or SIGTERM, a command
    with nothing left to do stayed for tens of seconds. What the command writes is on disk
    by then (records are flushed as they are written, the summary before the interrupt
    reaches here), so exiting at once loses nothing."""
    import atexit
    import os
    import threading

    if any(t.name.startswith(_MODEL_THREADS) and t.is_alive() for t in threading.enumerate()):
        atexit._run_exitfuncs()  # what exit would still do (remove the model's socket folder)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def print_error(exc: MatrixAlignError) -> None:
    """The error and its hint on stderr. The text is escaped, not read as rich markup (an
    install hint such as ``pip install 'matrix-align[train]'`` must print as it is), and
    scrubbed of secrets (a --base-url with credentials is quoted in many messages)."""
    from rich.console import Console
    from rich.markup import escape

    from matrix_align.redact import redact

    console = Console(stderr=True, soft_wrap=True)  # keep messages greppable: no wrapping
    console.print(f"[bold red]error:[/] {escape(redact(exc.message))}", highlight=False)
    if exc.hint:
        console.print(f"[dim]hint:[/] {escape(redact(exc.hint))}", highlight=False)
