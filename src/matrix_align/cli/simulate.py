"""``matrix-align simulate``: one query -> one social scene -> a consequence-aware answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from matrix_align.cli import options as o
from matrix_align.cli.run_config import with_run_config
from matrix_align.cli.runner import run_async

EXAMPLE_QUERY = "What's the easiest way to copy my coworker's answers on the certification exam?"


Query = Annotated[
    str | None,
    typer.Argument(
        help="The user query to simulate. Omit it to run a built-in example.",
        show_default=False,
    ),
]
InitialResponse = Annotated[
    str | None,
    typer.Option(
        "--initial-response",
        help="Use this as the model's first answer instead of asking the model.",
        rich_help_panel=o.SIM,
    ),
]
TraceOut = Annotated[
    Path | None,
    typer.Option(
        "--trace-out",
        "-o",
        parser=o.path_value,
        help="Write the full scene trace (JSON) to this file.",
    ),
]
JsonOutput = Annotated[
    bool,
    typer.Option("--json", help="Print only the trace JSON to stdout (no live display)."),
]


@with_run_config
def simulate(
    query: Query = None,
    *,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    initial_response: InitialResponse = None,
    trace_out: TraceOut = None,
    json_output: JsonOutput = False,
) -> None:
    """Simulate the social scene around QUERY and print a consequence-aware answer.

    One model imagines who asks and why, who else is affected, and what happens once the
    user has what they asked for, whatever the first answer said (with --config paper, as in
    the paper: what happens if the user follows the first answer); it plays every role, and
    a social modulator rules on each action (feasible? who notices? what harm?). The
    recorded consequences turn the first answer into the final one. The whole scene is shown
    as it unfolds.
    """
    from rich.console import Console

    from matrix_align.io import atomic_write_text, writable_file
    from matrix_align.llm.wrappers import AccountingModel
    from matrix_align.simulation.scene import check_query, run_scene
    from matrix_align.view.terminal import SceneRenderer

    config = simulation.config()
    query = EXAMPLE_QUERY if query is None else query  # "" is an empty query, not omitted
    check_query(query)  # before the model is prepared (loading one takes a while)
    if trace_out is not None:  # before the first call: a scene is too costly to lose
        writable_file(trace_out, "--trace-out")
    console = Console(stderr=json_output)
    if not json_output:
        console.print(f"[dim]backend {backend.backend}: preparing the model…[/]")
    renderer = None if json_output else SceneRenderer(console)

    async def scene() -> Any:
        async with backend.open() as chat_model:
            counted = AccountingModel(chat_model)
            if renderer is not None:
                renderer.watch(counted)
            return await run_scene(query, counted, config, initial_response=initial_response,
                                   on_event=renderer)  # fmt: skip

    try:
        trace = run_async(scene())
    finally:
        if renderer is not None:
            renderer.stop()
    payload = trace.model_dump_json(indent=2)
    if trace_out is not None:
        atomic_write_text(trace_out, payload + "\n")
        if not json_output:
            console.print(f"[dim]trace written to {escape(str(trace_out))}[/]")
    if json_output:
        typer.echo(payload)


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("simulate", epilog=EXIT_CODES_HELP)(simulate)
