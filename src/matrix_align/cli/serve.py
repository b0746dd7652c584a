"""``matrix-align serve``: an OpenAI-compatible server answering every request through
MATRIX, in front of any backend (docs/serve.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from matrix_align.cli import options as o
from matrix_align.cli.run_config import with_run_config
from matrix_align.cli.runner import run_async
from matrix_align.cli.serve_options import ServerOptions

if TYPE_CHECKING:
    from matrix_align.serve.record import ServeRecord


@with_run_config
def serve(
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    server: ServerOptions,
) -> None:
    """Serve an OpenAI-compatible API that answers every request through MATRIX.

    POST /v1/chat/completions (plain or streamed) runs a scene around the request's query
    (its user message, or the conversation rendered as one text) with the chosen backend and
    returns the consequence-aware answer; usage counts every call of the scene; the scene's
    trace is at GET /v1/matrix/traces/ID (ID in the x-matrix-trace-id header and the
    response's id). Simulation options set the server's scenes; a request may change them
    with extra_body={"matrix": {"roles": 2, "steps": 2}}. A scene costs tens of calls (about
    15 at --roles 2 --steps 2): see docs/serve.md.

    Example: matrix-align serve --backend openai --base-url http://localhost:8000/v1
    --model Qwen/Qwen2.5-7B-Instruct --roles 2 --steps 2
    """
    from rich.console import Console

    from matrix_align.extras import SERVE_HINT, SERVE_MODULES, require_modules

    require_modules(SERVE_MODULES, "matrix-align serve", SERVE_HINT)
    from matrix_align.serve.app import create_app
    from matrix_align.serve.server import bind

    config = simulation.config()
    settings = server.settings()
    console = Console(soft_wrap=True)  # one line per request, greppable in a log
    sock = bind(server.host, server.port)  # before the model loads: a port in use fails fast
    try:
        console.print(f"[dim]backend {backend.backend}: preparing the model…[/]")
        _serve_until_stopped(
            backend.replace(retries=server.retries),
            sock,
            settings,
            lambda chat_model: create_app(
                chat_model, config, settings, on_finished=_printer(console)
            ),  # fmt: skip
            lambda: _announce(console, sock, server, settings, config),
        )
    finally:
        sock.close()
    console.print("stopped")


def _serve_until_stopped(
    backend: Any,
    sock: Any,
    settings: Any,
    make_app: Callable[[Any], Any],
    announce: Callable[[], None],
) -> None:
    """Open the backend (a ``BackendSpec``: built, checked), serve the app made for it until
    Ctrl-C, and close it, in one event loop. Ctrl-C while serving is the normal end (exit 0);
    while the model loads, it interrupts the command as it would any other."""
    from matrix_align.serve.server import serve

    serving = False

    async def main() -> None:
        nonlocal serving
        async with backend.open() as chat_model:
            app = make_app(chat_model)
            announce()
            serving = True
            await serve(app, sock, settings)

    try:
        run_async(main())
    except KeyboardInterrupt:
        if not serving:
            raise


def _announce(console: Any, sock: Any, server: ServerOptions, settings: Any, config: Any) -> None:
    from matrix_align.serve.server import bound_url

    console.print(
        f"serving MATRIX at [bold]{escape(bound_url(sock))}[/] as model "
        f"[bold]{escape(settings.model_name)}[/]: gate {server.gate}, "
        f"{config.n_roles} roles x {config.n_steps} steps, {server.max_concurrency} at "
        f"once, queue {server.max_queue} (Ctrl-C stops)",
        highlight=False,
    )
    from matrix_align.serve.protocol import connection_cap
    from matrix_align.serve.server import BACKLOG

    cap = connection_cap(settings.max_connections, BACKLOG)
    if cap < settings.max_connections:
        console.print(
            f"[yellow]note:[/] at most {cap} connections at once (--max-connections "
            f"{settings.max_connections}), to stay under the open-file limit (ulimit -n)",
            highlight=False,
        )
    if settings.allowed_hosts is None and settings.api_key is None:
        console.print(
            f"[yellow]warning:[/] listening on {escape(server.host)} with no key: anyone "
            "who can reach it can run scenes and read every trace (set --auth-key-env)",
            highlight=False,
        )


def _printer(console):  # noqa: ANN001, ANN202
    """One line per finished request: id, outcome, scene or not, calls, tokens, time (never
    the query: it may be private, and is in the trace for whoever may read it)."""

    def finished(record: ServeRecord) -> None:
        usage = record.usage()
        where = {True: "scene", False: "direct"}.get(record.gate.scene, "undecided")
        colour = "green" if record.status == "completed" else "yellow"
        console.print(
            f"[{colour}]{record.status}[/] {record.id} {where}: {len(record.calls())} calls, "
            f"{usage['total_tokens']:,} tokens, {record.wall_time_s or 0:.1f} s",
            highlight=False,
        )

    return finished


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("serve", epilog=EXIT_CODES_HELP)(serve)
