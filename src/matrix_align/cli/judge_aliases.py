"""The older spelling of the judges (kept for one release; ``--judge SPEC`` replaces it):
repeatable ``--judge-backend``/``--judge-model``/``--judge-base-url`` paired by position,
with one ``--judge-api-key-env`` and one ``--judge-parallel`` for all judges. They make the
same ``BackendSpec``s as ``--judge`` would, so a command line of either spelling judges
alike; ``JudgeOptions`` refuses the two spellings together."""

from __future__ import annotations

from typing import Annotated

import typer

from matrix_align.cli.options import JUDGE
from matrix_align.llm.spec import API_KEY_ENV, BackendSpec

OLDER = "Older spelling of --judge, kept for one release:"
# The judges' requests at once when the older spelling does not say (the judge options'
# default before --judge; --judge leaves it to each backend's own default).
PARALLEL = 4

BackendAlias = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-backend",
        help=f"{OLDER} judge backend (repeat for several judges).",
        rich_help_panel=JUDGE,
    ),
]
ModelAlias = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-model",
        help=f"{OLDER} judge model (repeat for several judges, paired with --judge-backend "
        "by position).",
        rich_help_panel=JUDGE,
    ),
]
BaseUrlAlias = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-base-url",
        help=f"{OLDER} judge endpoint: one for all judges, or one per judge.",
        rich_help_panel=JUDGE,
    ),
]
ApiKeyEnvAlias = Annotated[
    str | None,
    typer.Option(
        "--judge-api-key-env",
        help=f"{OLDER} environment variable with every judge's API key (default: {API_KEY_ENV}).",
        rich_help_panel=JUDGE,
        show_default=False,
    ),
]
ParallelAlias = Annotated[
    int | None,
    typer.Option(
        "--judge-parallel",
        min=1,
        max=256,
        help=f"{OLDER} requests at once per judge (default: {PARALLEL}).",
        rich_help_panel=JUDGE,
        show_default=False,
    ),
]


def alias_specs(
    backends: list[str] | None,
    models: list[str] | None,
    base_urls: list[str] | None,
    *,
    api_key_env: str | None,
    parallel: int | None,
) -> list[BackendSpec]:
    """The judges the older options name, each with the one key variable and parallelism."""
    own = {"api_key_env": api_key_env} if api_key_env else {}
    return [
        BackendSpec(backend, model=model, base_url=url, parallel=parallel or PARALLEL, **own)
        for backend, model, url in judge_specs(backends, models, base_urls)
    ]


def judge_specs(
    backends: list[str] | None,
    models: list[str] | None,
    base_urls: list[str] | None,
) -> list[tuple[str, str | None, str | None]]:
    """(backend, model, base_url) per judge from the repeatable judge options.

    Judges are paired by position. One --judge-backend serves every --judge-model, and one
    --judge-base-url serves every judge. A --judge-model without any --judge-backend is an
    error: the judge's backend is never guessed from the model under test.
    """
    from matrix_align.errors import MatrixAlignError

    backends, models, urls = backends or [], models or [], base_urls or []
    if not backends and not models:
        if urls:
            raise MatrixAlignError("--judge-base-url given without --judge-backend.")
        return []
    if not backends:
        raise MatrixAlignError(
            "--judge-model needs --judge-backend.",
            hint="e.g. --judge-backend openai --judge-model gpt-4o --judge-base-url URL",
        )
    if len(backends) == 1 and len(models) > 1:
        backends = backends * len(models)
    if not models:
        models_: list[str | None] = [None] * len(backends)
    elif len(models) == len(backends):
        models_ = list(models)
    else:
        raise MatrixAlignError(
            f"{len(backends)} --judge-backend values but {len(models)} --judge-model values.",
            hint="give one backend for all judges, or one backend per --judge-model",
        )
    if len(urls) > 1 and len(urls) != len(backends):
        raise MatrixAlignError(
            f"{len(urls)} --judge-base-url values for {len(backends)} judges.",
            hint="give one URL for all judges, or one per judge",
        )
    urls_: list[str | None] = (
        list(urls) if len(urls) > 1 else [urls[0] if urls else None] * len(backends)
    )
    return list(zip(backends, models_, urls_, strict=True))
