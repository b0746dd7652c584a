"""``matrix-align view``: a scene trace, a dataset or an evaluation as a site in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from matrix_align.cli.options import path_value

ViewPath = Annotated[
    Path,
    typer.Argument(
        parser=path_value,
        help="A scene trace (.json from `simulate --trace-out`), a `generate` output "
        "folder, or an `evaluate` output folder.",
        show_default=False,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        parser=path_value,
        help="Where to write the site (default: NAME-view/ beside a trace file, view/ "
        "inside a folder). Replaced if it is a site written earlier.",
    ),
]
Serve = Annotated[
    bool,
    typer.Option("--serve", help="Serve the site on 127.0.0.1 until Ctrl-C."),
]
Port = Annotated[
    int,
    typer.Option("--port", min=0, max=65535, help="Port for --serve (0: any free port)."),
]


def view(
    path: ViewPath,
    out: Out = None,
    serve: Serve = False,
    port: Port = 8765,
) -> None:
    """Write a self-contained site for PATH (no network requests) and print where it is.

    A scene page shows the set-up, roles, plan, every action with the modulator's verdict
    (rejected ones marked), who noticed it and the harm recorded, the consequence, the first
    and final answers with their differences highlighted, and every model call. A dataset
    page lists the samples (searchable, paginated) with failures and summary figures; an
    evaluation page shows the report, its plots and each system's answers with the verdicts.
    """
    import time

    from rich.console import Console

    from matrix_align.view.serve import SiteServer
    from matrix_align.view.site import build_site

    console = Console()
    started = time.perf_counter()
    site = build_site(path, out)
    elapsed = time.perf_counter() - started
    pages = f"{site.pages} page{'s' if site.pages != 1 else ''}"
    console.print(f"{site.kind} site: {pages} written in {elapsed:.1f} s", highlight=False)
    for warning in site.warnings[:10]:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if len(site.warnings) > 10:
        console.print(
            f"[yellow]… and {len(site.warnings) - 10} more warnings (listed on the page)[/]"
        )
    console.print(f"open [bold]{site.index.resolve().as_uri()}[/]", highlight=False)
    if not serve:
        return
    with SiteServer(site.out, port) as server:
        console.print(f"serving at [bold]{server.url}[/] (Ctrl-C stops)", highlight=False)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopped")


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("view", epilog=EXIT_CODES_HELP)(view)
