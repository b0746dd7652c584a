"""The judges' options of the commands that judge answers (``evaluate``, ``sweep``), declared
once as ``JudgeOptions``, so a command line moves between them unchanged: ``--judge SPEC``,
one judge each, read into a ``BackendSpec`` (``llm.spec_text``), so each judge has its own
settings; the older spelling (``judge_aliases``) until it goes. ``--metrics`` (whose help
names the command's own ``--list``) and the helpers both commands use are here too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from matrix_align.cli import judge_aliases as ja
from matrix_align.cli.option_groups import OptionGroup
from matrix_align.cli.options import JUDGE
from matrix_align.llm.spec_text import option_names

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
Judge = Annotated[
    list[str] | None,
    typer.Option(
        "--judge",
        metavar="SPEC",
        help="A model judge, named in full: BACKEND[:MODEL][,KEY=VALUE...], e.g. "
        "openai:gpt-4o-mini or 'openai:gpt-4o-mini,base-url=http://host:8000/v1,"
        "api-key-env=JUDGE_KEY,parallel=8,request-timeout=60'. KEY: a backend option without "
        f"its dashes ({', '.join(option_names().values())}). A setting not given is the "
        "backend's default, but for the request timeout and the --rpm/--tpm budget, which are "
        "the model under test's. Repeat for several judges; results name each BACKEND:MODEL.",
        rich_help_panel=JUDGE,
        show_default=False,
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
    """The judges (``--judge``, one spec each, or the older spelling) and the cap on their
    replies."""

    judge: Judge = None
    judge_max_tokens: JudgeMaxTokens = 512
    judge_backend: ja.BackendAlias = None
    judge_model: ja.ModelAlias = None
    judge_base_url: ja.BaseUrlAlias = None
    judge_api_key_env: ja.ApiKeyEnvAlias = None
    judge_parallel: ja.ParallelAlias = None

    def backends(self) -> list[Any]:
        """The judges (``JudgeBackend``), every spec checked before anything is built."""
        from matrix_align.errors import MatrixAlignError
        from matrix_align.evaluate.judge_backends import judge_backends
        from matrix_align.llm.spec import BackendSpec
        from matrix_align.llm.spec_text import parse_spec

        older = [self.judge_backend, self.judge_model, self.judge_base_url,
                 self.judge_api_key_env, self.judge_parallel]  # fmt: skip
        if self.judge and any(value is not None for value in older):
            raise MatrixAlignError(
                "--judge is given with the older --judge-backend/--judge-model/"
                "--judge-base-url/--judge-api-key-env/--judge-parallel spelling.",
                hint="name each judge in one --judge with its own settings, e.g. --judge "
                "openai:gpt-4o,base-url=URL,api-key-env=VAR,parallel=8",
            )
        if self.judge:  # texts, or specs read from a --config file's judges: (run_config)
            return judge_backends(
                item if isinstance(item, BackendSpec) else parse_spec(item, option="--judge")
                for item in self.judge
            )
        specs = ja.alias_specs(self.judge_backend, self.judge_model, self.judge_base_url,
                               api_key_env=self.judge_api_key_env,
                               parallel=self.judge_parallel)  # fmt: skip
        return judge_backends(specs)

    def open(self, judges: list[Any], *, under_test: Any, seed: int) -> Any:
        """The judges opened beside the model under test (``open_judges``), as ``JudgeSpec``s;
        closed when the block ends."""
        from matrix_align.evaluate.judge_backends import open_judges

        return open_judges(judges, under_test=under_test, max_tokens=self.judge_max_tokens,
                           seed=seed)  # fmt: skip


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
