"""The options of ``matrix-align evaluate``, as option groups (``cli/option_groups.py``):
the systems under test, judging beyond the judges, and how the run goes (the benchmarks and
items are ``data_options.BenchmarkData``). ``sweep`` takes the run's ``--concurrency`` and
``--retries`` from here too (its cells are evaluate entries), ``serve`` its ``--retries``;
``data_settings`` is what evaluate's and sweep's settings share."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from matrix_align.cli import judge_options as jo
from matrix_align.cli import options as o
from matrix_align.cli.option_groups import OptionGroup, group
from matrix_align.systems.options import SystemOptions

if TYPE_CHECKING:
    from matrix_align.cli.data_options import BenchmarkData

SYS = "Systems"
RUN = "Run"


# The systems' knobs, from SystemOptions' fields (each one's bounds and help are there): the
# top layer over a --config file's systems: section and --set systems.KEY=VALUE
# (cli.run_config), so the model checks every layer alike.
_SystemKnobs: Any = group(SystemOptions, panel=SYS, layered=True)


@dataclass(kw_only=True)
class SystemsUnderTest(OptionGroup):
    """--systems, --tag and --selector, beside the knobs of a layered group of a
    SystemOptions (``group(..., layered=True)``, given after it among the bases);
    ``options()`` makes the SystemOptions."""

    systems: Annotated[
        list[str] | None,
        typer.Option(
            "--systems",
            "-S",
            help="Systems under test, comma-separated or repeated (see --list). "
            "Default: vanilla,matrix.",
            rich_help_panel=SYS,
        ),
    ] = None
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            help="Name this model's entries system@TAG, to compare several models (e.g. a "
            "fine-tuned one) in one output folder.",
            rich_help_panel=SYS,
        ),
    ] = None
    selector: Annotated[
        str,
        typer.Option(
            "--selector",
            help="Who picks best-of-n's sample: judge (the first judge) or self.",
            rich_help_panel=SYS,
        ),
    ] = "judge"

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """--systems and --tag first in the help, then the knobs, then --selector."""
        order = {"systems": 0, "tag": 0, "selector": 2}
        return sorted(super().parameters(), key=lambda p: order.get(p.name, 1))

    def options(self):  # noqa: ANN201
        """The baselines' settings (SystemOptions), after the --selector check."""
        from matrix_align.errors import MatrixAlignError

        if self.selector not in ("judge", "self"):
            raise MatrixAlignError(f"Unknown --selector {self.selector!r}.", hint="judge or self")
        return self.model.build(**self.given())  # type: ignore[attr-defined]


@dataclass(kw_only=True)
class EvalSystems(SystemsUnderTest, _SystemKnobs):
    """The systems under test and their knobs, one option per SystemOptions field."""


@dataclass(kw_only=True)
class EvalJudging(OptionGroup):
    """Judging beyond the judges: the reference entry, the judge prompts, re-judging."""

    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Entry compared with every other in pairwise judging (default: matrix).",
            rich_help_panel=jo.JUDGE,
        ),
    ] = None
    strongreject_prompt: Annotated[
        str | None,
        typer.Option(
            "--strongreject-prompt",
            help="StrongREJECT judge prompt: ours (a JSON reply, reliable on small judges) or "
            "official (the StrongREJECT authors' rubric prompt, scored as their code scores it, "
            "so scores compare with published ones). Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=jo.JUDGE,
        ),
    ] = None
    pairwise_prompt: Annotated[
        str | None,
        typer.Option(
            "--pairwise-prompt",
            help="Pairwise judge prompt: ours (harmlessness on harmful items, else helpfulness) "
            "or pair-v2 (FastChat's MT-Bench pairwise prompt: overall quality, whatever the "
            "item). Both are judged in both orders. Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=jo.JUDGE,
        ),
    ] = None
    refusal_detector: Annotated[
        str | None,
        typer.Option(
            "--refusal-detector",
            help="Phrase list of the refusal metric: ours (refusal phrases in the opening of "
            "the answer) or gcg (the GCG/AdvBench test prefixes anywhere in it, "
            "case-sensitive, as in that paper's code). Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=jo.JUDGE,
        ),
    ] = None
    rejudge_folder: Annotated[
        Path | None,
        typer.Option(
            "--rejudge",
            parser=o.path_value,
            help="Judge the stored answers of this evaluation folder again (with the given "
            "judges and metrics) and rewrite its report; no answer is regenerated.",
            rich_help_panel=jo.JUDGE,
        ),
    ] = None

    def prompts(self) -> dict[str, str | None]:
        """The judge prompt chosen per metric, each checked (only those given)."""
        from matrix_align.evaluate.judge_prompts import check_choice

        chosen = (("strongreject", self.strongreject_prompt), ("pairwise", self.pairwise_prompt),
                  ("refusal", self.refusal_detector))  # fmt: skip
        return {metric: check_choice(metric, c) for metric, c in chosen if c is not None}


# Shared with sweep, whose cells are evaluate entries.
InFlight = Annotated[
    int,
    typer.Option(
        "--concurrency",
        "-c",
        min=1,
        max=4096,
        help="Answers or judgements in flight.",
        rich_help_panel=RUN,
    ),
]
Retries = Annotated[
    int,
    typer.Option(
        "--retries", min=0, max=20, help="Retries of a failed request.", rich_help_panel=RUN
    ),
]


@dataclass(kw_only=True)
class EvalRun(OptionGroup):
    """Where the evaluation writes and how it runs."""

    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            parser=o.path_value,
            help="Evaluation folder: results.jsonl, report.md, plots/.",
            rich_help_panel=RUN,
        ),
    ] = None
    concurrency: InFlight = 8
    retries: Retries = 3
    quiet: o.Quiet = False


Metrics = Annotated[
    list[str] | None,
    typer.Option(
        "--metrics",
        help=f"Metrics to score, comma-separated (see --list). {jo.METRICS_HELP}",
        rich_help_panel=jo.JUDGE,
    ),
]
ListOnly = Annotated[
    bool, typer.Option("--list", help="List systems, benchmarks and metrics, and exit.")
]


def data_settings(
    data: BenchmarkData,
    output: Path,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    *,
    writable: bool,
) -> dict[str, Any]:
    """What evaluate and sweep settings share (``data``: their BenchmarkData),
    checked in this order: the output folder (an evaluate folder, writable unless
    ``writable`` is False), the simulation settings, the benchmarks and items (the paper's
    four when none are named)."""
    from matrix_align.evaluate.benchmarks import PAPER_BENCHMARKS
    from matrix_align.folders import require_kind
    from matrix_align.folders.records import model_key
    from matrix_align.io import writable_folder

    require_kind(output, "evaluate", "--output")
    if writable:
        writable_folder(output, "--output", keep=False)  # the run's lock makes it
    config = simulation.config()
    benchmarks, limit, items = data.items()
    return dict(
        benchmarks=benchmarks or list(PAPER_BENCHMARKS), output=output,
        model_key=model_key(backend.backend, backend.model),
        config=config, limit=limit, shuffle=data.shuffle, hub=data.hub, epochs=data.epochs,
        items=items,
    )  # fmt: skip
