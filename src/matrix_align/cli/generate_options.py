"""The options of ``matrix-align generate``, as option groups (``cli/option_groups.py``):
where the run writes and how it runs (``GenerateRun``), which queries and what the exports
include (``GenerateData``), and the hidden ``--call-delay`` of tests and benches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli import options as o
from matrix_align.cli.data_options import check_hub, hub_option, limit_option, shuffle_option
from matrix_align.cli.option_groups import OptionGroup

DATA = "Data"
Limit = limit_option("Queries per source, for sources without their own :N", DATA)
Shuffle = shuffle_option(DATA)
Hub = hub_option("Built-in sources", DATA)
RUN = "Run"


@dataclass(kw_only=True)
class GenerateRun(OptionGroup):
    """Where the run writes and how it runs."""

    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            parser=o.path_value,
            help="Run folder: samples.jsonl, errors.jsonl, "
            "summary.json, exports/. Re-run the same command to resume.",
            rich_help_panel=RUN,
        ),
    ] = None
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=4096,
            help="Scenes in flight at once (default: 2 x --parallel x number of --base-url, at "
            "least 4).",
            rich_help_panel=RUN,
        ),
    ] = None
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            min=0,
            max=20,
            help="Retries of a failed request "
            "(timeouts, 429, 5xx) before the sample counts as failed.",
            rich_help_panel=RUN,
        ),
    ] = 3
    abort_after: Annotated[
        int,
        typer.Option(
            "--max-consecutive-failures",
            min=0,
            help="Stop after this many samples fail in a row (0: never stop).",
            rich_help_panel=RUN,
        ),
    ] = 25
    export: Annotated[
        bool,
        typer.Option(
            "--export/--no-export",
            help="Write exports/ (JSONL, Parquet, datasets folder) at the end.",
            rich_help_panel=RUN,
        ),
    ] = True
    quiet: o.Quiet = False

    def scenes(self, backend: o.BackendOptions) -> int:
        """Scenes in flight: --concurrency, else twice the requests the servers take."""
        from matrix_align.llm.registry import default_scenes_in_flight

        servers = len(backend.base_url) or 1
        return self.concurrency or default_scenes_in_flight(backend.slots, servers)


@dataclass(kw_only=True)
class GenerateData(OptionGroup):
    """Which queries, and what the exports include."""

    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Built-in source NAME[@SPLIT][:matrix|direct[:N]], "
            "repeatable, e.g. advbench:matrix:500 --source vicuna-bench:direct:80 "
            "(hh_harmless and hh-harmless alike).",
            rich_help_panel=DATA,
        ),
    ] = None
    input_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            "-i",
            help="Your own queries: JSONL, JSON, CSV or Parquet, or a Hub dataset as "
            "hf://OWNER/NAME[:CONFIG][@SPLIT] (repeatable).",
            rich_help_panel=DATA,
        ),
    ] = None
    input_mode: Annotated[
        str,
        typer.Option(
            "--input-mode",
            help="How --input queries are answered: matrix or direct.",
            rich_help_panel=DATA,
        ),
    ] = "matrix"
    prompt_field: Annotated[
        str,
        typer.Option(
            "--prompt-field",
            help="Column of --input files holding the prompt (text, or a chat message list).",
            rich_help_panel=DATA,
        ),
    ] = "prompt"
    limit: Limit = None
    shuffle: Shuffle = False
    include_substeps: Annotated[
        bool,
        typer.Option(
            "--include-substeps",
            help="Also export each scene call of the simulation itself (set-up, roles, "
            "actions, reactions, modulator, memory, consequence; valid first attempts only) "
            "as a prompt -> output training row: two dozen or more a scene at 5 x 5.",
            rich_help_panel=DATA,
        ),
    ] = False
    substeps: Annotated[
        int | None,
        typer.Option(
            "--substeps",
            min=1,
            metavar="N",
            help="Export at most N of those sub-step rows in all, a uniform sample seeded by "
            "--seed (implies --include-substeps): the paper's 30B set has 6K for 6K scenes.",
            rich_help_panel=DATA,
        ),
    ] = None
    hub: Hub = "auto"
    list_only: Annotated[
        bool,
        typer.Option(
            "--list-sources", help="List the built-in sources and exit.", rich_help_panel=DATA
        ),
    ] = False

    @property
    def with_substeps(self) -> bool:
        return self.include_substeps or self.substeps is not None

    def specs(self) -> list[Any]:
        """The --source specs, parsed, and --hub, checked (before the simulation settings)."""
        from matrix_align.data.generate import SourceSpec

        check_hub(self.hub)
        return [SourceSpec.parse(text) for text in self.source or []]

    def plan(self, specs: list[Any], config: Any, model_key: str):  # noqa: ANN201
        """Every source and input file loaded in full and each query given its id."""
        from matrix_align.data.generate import build_plan

        return build_plan(
            specs, self.input_file or [], config=config, model_key=model_key,
            input_mode=self.input_mode, prompt_field=self.prompt_field, limit=self.limit,
            shuffle=self.shuffle, seed=config.seed, hub=self.hub,  # type: ignore[arg-type]
        )  # fmt: skip


CallDelay = Annotated[
    float,
    typer.Option(
        "--call-delay", hidden=True, help="Simulated latency per call (tests, benchmarks)."
    ),
]
