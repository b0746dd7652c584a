"""``matrix-align evaluate``: systems x benchmarks -> answers -> judgements -> report.

Checks run before the first model call, in this order: system, benchmark and metric
names; simulation and system options; judge options; the benchmarks (loaded in full); the
output folder (a second model under an existing entry name); whether every judged metric
has a judge. Then the backends are opened (built, checked, and closed at the end: ``async
with spec.open()``) in the event loop that runs the evaluation (HTTP clients belong to the
loop they were made in). The run itself is
``evaluate.runner``; this module parses options and shows progress.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from matrix_align.cli import judge_options as jo
from matrix_align.cli import options as o
from matrix_align.cli.judge_options import (
    JudgeOptions,
    checked_metrics,
    judge_specs,  # noqa: F401  (re-exported: the judges' pairing is tested here)
    split_values,
)
from matrix_align.cli.limit import limit_option
from matrix_align.cli.option_groups import OptionGroup, field_default, with_option_groups
from matrix_align.cli.runner import run_async

SYS = "Systems"
DATA = "Benchmarks"
RUN = "Run"


def _system_default(field: str) -> str:
    from matrix_align.systems import SystemOptions

    return field_default(SystemOptions, field)


def list_choices() -> None:
    from rich.console import Console
    from rich.table import Table

    from matrix_align.evaluate.benchmarks import BENCHMARKS
    from matrix_align.evaluate.metrics import METRICS
    from matrix_align.systems import SYSTEMS

    console = Console()
    systems = Table(title="Systems (--systems)")
    for column in ("name", "what it does", "model calls per answer"):
        systems.add_column(column)
    for system in SYSTEMS.values():
        systems.add_row(system.name, system.summary, system.calls)
    console.print(systems)
    benches = Table(title="Benchmarks (--benchmarks)")
    for column in ("name", "kind", "default metrics", "in the MATRIX paper"):
        benches.add_column(column)
    for bench in BENCHMARKS.values():
        benches.add_row(
            bench.name, bench.kind, ", ".join(bench.metrics), "yes" if bench.paper else ""
        )
    console.print(benches)
    metrics = Table(title="Metrics (--metrics)")
    metrics.add_column("name")
    metrics.add_column("meaning")
    for name, metric in METRICS.items():
        metrics.add_row(name, metric.description)
    console.print(metrics)
    from matrix_align.evaluate.subsets import describe

    subsets = Table(title="Pinned subsets (--subset)")
    for column in ("name", "items", "what it is"):
        subsets.add_column(column)
    for row in describe():
        subsets.add_row(*row)
    console.print(subsets)


@dataclass(kw_only=True)
class EvalSystems(OptionGroup):
    """The systems under test and their settings."""

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
    critique_rounds: Annotated[
        int | None,
        typer.Option(
            "--critique-rounds",
            help=f"critique-revise rounds ({_system_default('critique_rounds')}).",
            rich_help_panel=SYS,
        ),
    ] = None
    debate_agents: Annotated[
        int | None,
        typer.Option(
            "--debate-agents",
            help=f"Agents in a debate ({_system_default('debate_agents')}).",
            rich_help_panel=SYS,
        ),
    ] = None
    debate_rounds: Annotated[
        int | None,
        typer.Option(
            "--debate-rounds",
            help=f"Debate rounds ({_system_default('debate_rounds')}).",
            rich_help_panel=SYS,
        ),
    ] = None
    best_of_n: Annotated[
        int | None,
        typer.Option(
            "--best-of-n",
            help=f"Samples drawn by best-of-n ({_system_default('best_of_n')}).",
            rich_help_panel=SYS,
        ),
    ] = None
    sample_temperature: Annotated[
        float | None,
        typer.Option(
            "--sample-temperature",
            help=f"Temperature of best-of-n samples ({_system_default('sample_temperature')}).",
            rich_help_panel=SYS,
        ),
    ] = None
    refine_iterations: Annotated[
        int | None,
        typer.Option(
            "--refine-iterations",
            help=f"Most self-refine feedback rounds ({_system_default('refine_iterations')}).",
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

    def options(self):  # noqa: ANN201
        """The baselines' settings (SystemOptions), after the --selector check."""
        from matrix_align.errors import MatrixAlignError
        from matrix_align.systems import SystemOptions

        if self.selector not in ("judge", "self"):
            raise MatrixAlignError(f"Unknown --selector {self.selector!r}.", hint="judge or self")
        return SystemOptions.build(
            critique_rounds=self.critique_rounds, debate_agents=self.debate_agents,
            debate_rounds=self.debate_rounds, best_of_n=self.best_of_n,
            sample_temperature=self.sample_temperature, refine_iterations=self.refine_iterations,
        )  # fmt: skip


Limit = limit_option("Items per benchmark", DATA)  # shared with sweep


@dataclass(kw_only=True)
class EvalData(OptionGroup):
    """Which benchmarks and items, and how many answers to each."""

    benchmarks: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmarks",
            "-B",
            help="Benchmarks, comma-separated or repeated (see --list; inspect's spelling "
            "hh_harmless and inspect_evals' strong_reject work too). Default: the paper's "
            "four, hh-harmless,pku-saferlhf,advbench,harmfulqa.",
            rich_help_panel=DATA,
        ),
    ] = None
    limit: Limit = None
    subset: Annotated[
        str | None,
        typer.Option(
            "--subset",
            help="A pinned item list, so two runs compare on the same items: a shipped "
            "subset (quick, paper-50, pku-human-eval; see --list) or a manifest .json file. "
            "Items come from the shipped samples (--hub does not apply); --benchmarks keeps "
            "some of the subset's benchmarks, --limit the first N items of each.",
            rich_help_panel=DATA,
        ),
    ] = None
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            min=1,
            max=100,
            help="Answers per item and system, each with its own seed derived from --seed; "
            "every answer is judged and rates are over all of them (the intervals still count "
            "items, not answers). The report adds how many items got the same refusal decision at "
            "every sample.",
            rich_help_panel=DATA,
        ),
    ] = 1
    shuffle: Annotated[
        bool,
        typer.Option(
            "--shuffle",
            help="A seeded random subset (--seed) instead of the first items.",
            rich_help_panel=DATA,
        ),
    ] = False
    hub: Annotated[
        str,
        typer.Option(
            "--hub",
            help="Benchmarks from the Hugging Face hub: auto (when reachable, else the shipped "
            "sample), never, always.",
            rich_help_panel=DATA,
        ),
    ] = "auto"

    def items(self) -> tuple[list[str] | None, float | None, Any]:
        """(benchmark names, --limit, pinned items): a --subset names the items, and --limit
        takes a prefix of its lists. Names in inspect's or inspect_evals' spelling
        (``hh_harmless``, ``strong_reject``) are the project's."""
        from matrix_align.data.sources import HUB_POLICIES, source_name
        from matrix_align.errors import MatrixAlignError

        if self.hub not in HUB_POLICIES:
            raise MatrixAlignError(f"Unknown --hub {self.hub!r}.", hint="auto, never or always")
        given = split_values(self.benchmarks)
        names = None if given is None else [source_name(name) for name in given]
        if self.subset is None:
            return names, self.limit, None
        from matrix_align.evaluate.subsets import resolve

        items = resolve(self.subset, names, self.limit)
        return list(items), None, items


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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=RUN)
    ] = False


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


@with_option_groups
def evaluate(
    systems: EvalSystems,
    data: EvalData,
    metrics: Metrics = None,
    *,
    judges: JudgeOptions,
    judging: EvalJudging,
    run: EvalRun,
    list_only: ListOnly = False,
    estimate: o.DryRunOptions,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
) -> None:
    """Evaluate systems (vanilla, matrix and the paper's baselines) on harmlessness and
    helpfulness benchmarks with named judges; write results.jsonl, report.md and plots.

    Example: matrix-align evaluate --systems vanilla,matrix,critique-revise --benchmarks
    advbench,harmfulqa --limit 50 --judge-backend openai --judge-model gpt-4o
    --judge-base-url https://api.openai.com/v1 --output runs/eval
    """
    if list_only:
        list_choices()
        return
    from rich.console import Console

    from matrix_align.errors import MatrixAlignError

    console = Console(stderr=True)
    chosen_metrics = checked_metrics(metrics)
    specs = judges.specs()
    prompts = judging.prompts()
    estimate.check()
    if estimate.dry_run and judging.rejudge_folder is not None:
        raise MatrixAlignError(
            "--dry-run estimates a new evaluation, not a re-judging.",
            hint="drop --rejudge (or --dry-run)",
        )
    if judging.rejudge_folder is not None:
        _rejudge(console, judging, specs, chosen_metrics, prompts, run=run, judges=judges,
                 backend=backend)  # fmt: skip
        return
    settings = _settings(
        systems, data, run, judging, backend, simulation, metrics=chosen_metrics,
        prompts=prompts, dry_run=estimate.dry_run,
    )  # fmt: skip
    if estimate.dry_run:
        _dry_run(console, settings, specs, estimate, backend=backend, judges=judges)
        return
    run_async(_evaluate(console, settings, specs, run=run, judges=judges, backend=backend))


def _settings(
    systems: EvalSystems,
    data: EvalData,
    run: EvalRun,
    judging: EvalJudging,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    *,
    metrics: list[str] | None,
    prompts: dict[str, str | None],
    dry_run: bool,
):  # noqa: ANN202
    """The evaluation's settings, every option checked (the folder first)."""
    from matrix_align.errors import MatrixAlignError
    from matrix_align.evaluate.tasks import EvalSettings

    if run.output is None:
        raise MatrixAlignError("evaluate needs --output FOLDER.", hint="e.g. --output runs/eval")
    shared = data_settings(data, run.output, backend, simulation, writable=not dry_run)
    return EvalSettings(
        systems=split_values(systems.systems) or ["vanilla", "matrix"],
        options=systems.options(), metrics=metrics, reference=judging.reference,
        tag=systems.tag, concurrency=run.concurrency,
        selector=systems.selector,  # type: ignore[arg-type]
        judge_prompts=prompts, **shared,
    )  # fmt: skip


def data_settings(
    data: Any,
    output: Path,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    *,
    writable: bool,
) -> dict[str, Any]:
    """What evaluate and sweep settings share (``data``: their EvalData or SweepData),
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


def _dry_run(
    console: Any,
    settings: Any,
    specs: list[tuple[str, str | None, str | None]],
    estimate: o.DryRunOptions,
    *,
    backend: o.BackendOptions,
    judges: JudgeOptions,
) -> None:
    """The plan's notes and its estimated calls, tokens and cost; no model is loaded."""
    from matrix_align.evaluate import runner
    from matrix_align.evaluate.dry_run import estimate_evaluate

    prepared = runner.prepare(settings, len(specs))
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    estimate.print(
        estimate_evaluate(
            settings,
            prepared,
            specs,
            backend=backend.backend,
            judge_max_tokens=judges.judge_max_tokens,
        )  # fmt: skip
    )


async def _evaluate(
    console: Any,
    settings: Any,
    specs: list[tuple[str, str | None, str | None]],
    *,
    run: EvalRun,
    judges: JudgeOptions,
    backend: o.BackendOptions,
) -> None:
    """Checks that need no model first (names, data, folder, judges needed), then the
    backends, then the run, all in this one event loop."""
    from matrix_align.evaluate import runner

    # Every check that needs no model (names, data, folder, judges) before any backend.
    prepared = runner.prepare(settings, len(specs))
    under_test = backend.replace(retries=run.retries)
    seed = settings.config.seed
    async with (
        under_test.open() as chat_model,
        judges.open(specs, under_test=under_test, seed=seed) as built,
    ):
        for spec in built:
            if spec.key == settings.model_key:
                console.print(
                    f"[yellow]note:[/] the judge {spec.key} is the model under test (as you "
                    "named it); its verdicts on its own answers are not independent.",
                    highlight=False,
                )
        console.print(
            f"evaluating {', '.join(settings.systems)} on {', '.join(settings.benchmarks)} "
            f"with {settings.model_key}; judges: {', '.join(s.key for s in built) or 'none'}",
            highlight=False,
        )
        with progress_bars(console, run.quiet) as on_progress:
            result = await runner.evaluate(
                settings, chat_model, built, prepared=prepared, on_progress=on_progress
            )
    _print_result(console, result)


def _rejudge(
    console: Any,
    judging: EvalJudging,
    specs: list[tuple[str, str | None, str | None]],
    metrics: list[str] | None,
    prompts: dict[str, str | None],
    *,
    run: EvalRun,
    judges: JudgeOptions,
    backend: o.BackendOptions,
) -> None:
    from matrix_align.evaluate import runner

    folder = judging.rejudge_folder
    assert folder is not None

    async def main() -> Any:
        seed = int((runner.read_run(folder).get("simulation") or {}).get("seed", 0))
        async with judges.open(
            specs, under_test=backend.replace(retries=run.retries), seed=seed
        ) as built:
            with progress_bars(console, run.quiet) as on_progress:
                return await runner.rejudge(
                    folder, built, metrics=metrics, reference=judging.reference,
                    judge_prompts=prompts, concurrency=run.concurrency, on_progress=on_progress,
                )  # fmt: skip

    _print_result(console, run_async(main()))


@contextlib.contextmanager
def progress_bars(console: Any, quiet: bool) -> Any:
    """A progress bar per phase (answers, judgements); None callback when quiet."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("[dim]{task.fields[in_flight]} in flight"),
        console=console,
    )
    tasks: dict[str, Any] = {}

    def on_progress(phase: str, state: Any) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=state.total, failed=0, in_flight=0)
        progress.update(
            tasks[phase],
            total=state.total,
            completed=state.done + state.failed,
            failed=state.failed,
            in_flight=state.in_flight,
        )

    with progress:
        yield on_progress


def _print_result(console: Any, result: Any) -> None:
    if result.answer_stats is not None:
        a = result.answer_stats
        console.print(
            f"answers: {a.completed} new, {a.skipped_done} already done, {a.failed} failed",
            highlight=False,
        )
    j = result.judge_stats
    console.print(
        f"judgements: {j.completed} new, {j.skipped_done} already done, {j.failed} failed",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    answers_failed = result.answer_stats.failed if result.answer_stats is not None else 0
    if answers_failed or j.failed:
        console.print(
            f"[yellow]some items failed; see {result.output / 'errors.jsonl'} and rerun the "
            "same command to retry them[/]",
            highlight=False,
        )
    console.print(f"report: {result.report}", highlight=False)
    _exit_for(result)


def _exit_for(result: Any) -> None:
    """Exit 1 when a requested judge gave no verdict at all (its metrics are missing from the
    report), 3 when some answers or judgements failed, else return (exit 0)."""
    from matrix_align.errors import EXIT_PARTIAL, RunFailed

    if result.silent_judges:
        shown = "; ".join(
            f"{judge} ({', '.join(metrics)})" for judge, metrics in result.silent_judges.items()
        )
        raise RunFailed(
            f"Every judgement of a requested judge failed, so its metrics are missing from the "
            f"report: {shown}.",
            hint=f"see {result.output / 'errors.jsonl'}; check the judge (--judge-base-url, "
            "--judge-model), then rerun the same command to retry the judgements",
        )
    answers = result.answer_stats
    if answers is not None and answers.failed and not answers.completed + answers.skipped_done:
        raise RunFailed(
            f"Every answer failed ({answers.failed}); nothing was evaluated.",
            hint=f"see {result.output / 'errors.jsonl'}; check the backend, then rerun",
        )
    if (answers is not None and answers.failed) or result.judge_stats.failed:
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("evaluate", epilog=EXIT_CODES_HELP)(evaluate)
