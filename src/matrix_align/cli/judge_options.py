"""The judges' options of the commands that judge answers (``evaluate``, ``sweep``), declared
once as ``JudgeOptions``, so a command line moves between them unchanged; ``--metrics``
(whose help names the command's own ``--list``) and the helpers both use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from matrix_align.cli.option_groups import OptionGroup

JUDGE = "Judges"

# What --metrics says beyond where the list is, in every command that takes it.
METRICS_HELP = (
    "Default: each benchmark's own. asr-harmbench and asr-llama-guard give the "
    "attack-success rate by a harm classifier served as the judge (HarmBench's classifier, "
    "Llama Guard)."
)
Metrics = Annotated[
    list[str] | None,
    typer.Option(
        "--metrics",
        help=f"Metrics to score, comma-separated (see `evaluate --list`). {METRICS_HELP}",
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


@dataclass(kw_only=True)
class JudgeOptions(OptionGroup):
    """The judges: which (paired by position), and how they are called."""

    judge_backend: JudgeBackend = None
    judge_model: JudgeModel = None
    judge_base_url: JudgeBaseUrl = None
    judge_api_key_env: JudgeApiKeyEnv = "OPENAI_API_KEY"
    judge_parallel: JudgeParallel = 4
    judge_max_tokens: JudgeMaxTokens = 512

    def specs(self) -> list[tuple[str, str | None, str | None]]:
        """(backend, model, base_url) per judge, checked (see ``judge_specs``)."""
        return judge_specs(self.judge_backend, self.judge_model, self.judge_base_url)

    @contextlib.asynccontextmanager
    async def open(
        self,
        specs: list[tuple[str, str | None, str | None]],
        *,
        under_test: Any,
        seed: int,
    ) -> AsyncIterator[list[Any]]:
        """The judges (``JudgeSpec``), each opened in the running loop in turn (built, then
        checked); all closed when the block ends. A judge shares the retries, the
        --request-timeout and the --rpm/--tpm budget of ``under_test`` (the model under
        test's ``BackendSpec``); the rest is its own."""
        from matrix_align.evaluate.judges import Judge
        from matrix_align.evaluate.tasks import JudgeSpec
        from matrix_align.folders.records import model_key
        from matrix_align.llm.spec import BackendSpec, open_all

        models = [
            BackendSpec(
                name,
                model=model,
                base_url=url,
                api_key_env=self.judge_api_key_env,
                parallel=self.judge_parallel,
                retries=under_test.retries,
                timeout_s=under_test.timeout_s,
                limits=under_test.limits,
            )
            for name, model, url in specs
        ]
        async with open_all(models) as chats:
            keys = [model_key(name, model) for name, model, _ in specs]
            yield [
                JudgeSpec(key, Judge(chat, key=key, max_tokens=self.judge_max_tokens, seed=seed))
                for key, chat in zip(keys, chats, strict=True)
            ]


def split_values(values: list[str] | None) -> list[str] | None:
    """Comma-separated and/or repeated option values as one list (None when not given)."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def checked_metrics(values: list[str] | None) -> list[str] | None:
    """--metrics as a list of known metric names (None: each benchmark's own)."""
    from matrix_align.evaluate.metrics import check_metrics

    chosen = split_values(values)
    if chosen is not None:
        check_metrics(chosen)
    return chosen


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
