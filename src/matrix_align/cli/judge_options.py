"""Judge options for commands beside ``evaluate`` that judge answers (``sweep``), with the
same names and meaning as ``evaluate``'s, so a command line moves between them unchanged.
(``evaluate`` declares its own inline; they mean the same.)"""

from __future__ import annotations

from typing import Annotated

import typer

JUDGE = "Judges"

Metrics = Annotated[
    list[str] | None,
    typer.Option(
        "--metrics",
        help="Metrics to score, comma-separated (see `evaluate --list`). Default: each "
        "benchmark's own.",
        rich_help_panel=JUDGE,
    ),
]
JudgeBackend = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-backend", help="Judge backend (repeat for several judges).", rich_help_panel=JUDGE
    ),
]
JudgeModel = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-model", help="Judge model (repeat for several judges).", rich_help_panel=JUDGE
    ),
]
JudgeBaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-base-url",
        help="Judge endpoint: one for all judges, or one per judge.",
        rich_help_panel=JUDGE,
    ),
]
JudgeApiKeyEnv = Annotated[
    str,
    typer.Option(
        "--judge-api-key-env",
        help="Environment variable with the judge's API key.",
        rich_help_panel=JUDGE,
    ),
]
JudgeParallel = Annotated[
    int,
    typer.Option(
        "--judge-parallel", min=1, max=256, help="Judge requests at once.", rich_help_panel=JUDGE
    ),
]
JudgeMaxTokens = Annotated[
    int,
    typer.Option(
        "--judge-max-tokens", min=16, help="Cap on a judge reply's tokens.", rich_help_panel=JUDGE
    ),
]
