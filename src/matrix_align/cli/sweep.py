"""``matrix-align sweep``: MATRIX over a grid of simulation settings, each cell an evaluate
entry in one folder, then the paper's figure (a metric against the base model as a function of
each setting) and a table with 95% intervals.

The checks run before any model is loaded: the grid and every cell's settings, names,
items, the folder, a judge for every judged metric. The work is ``sweep.run``; this
module parses options and reports per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from matrix_align.cli import judge_options as jo
from matrix_align.cli import options as o
from matrix_align.cli.data_options import BenchmarkData, check_hub
from matrix_align.cli.evaluate_options import InFlight, Retries, data_settings
from matrix_align.cli.option_groups import OptionGroup
from matrix_align.cli.run_config import with_run_config
from matrix_align.cli.runner import run_async

if TYPE_CHECKING:
    from matrix_align.evaluate.judge_backends import JudgeBackend

RUN = "Run"


@dataclass(kw_only=True)
class SweepRun(OptionGroup):
    """The sweep's folder and how it runs."""

    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            parser=o.path_value,
            help="The sweep's folder (an evaluate folder plus sweep.json, sweep.md and "
            "plots/sweep.png). Rerun the same command to resume: finished cells are skipped, "
            "a cell cut short resumes item by item.",
            show_default=False,
            rich_help_panel=RUN,
        ),
    ]
    concurrency: InFlight = 8
    retries: Retries = 3
    quiet: o.Quiet = False


Grid = Annotated[
    list[str],
    typer.Option(
        "--grid",
        help="A simulation setting and its values, KEY=V1,V2,... (repeat for more "
        "settings; every combination is a cell). KEY is a simulation option's name "
        "(roles, steps, depth, memory-budget, strictness, reactions, final-prompt, "
        "temperature, seed...) or its config field (n_roles...).",
        show_default=False,
    ),
]
Base = Annotated[
    str,
    typer.Option(
        "--base",
        help="The base model's system, answered once and compared with every cell "
        "(the pairwise reference); 'none' for no base.",
    ),
]


@with_run_config
def sweep(
    grid: Grid,
    run: SweepRun,
    base: Base = "vanilla",
    *,
    data: BenchmarkData,
    metrics: jo.Metrics = None,
    judges: jo.JudgeOptions,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
) -> None:
    """Run MATRIX over a grid of simulation settings: each cell is an evaluate entry
    (matrix@roles=3,steps=2) in one folder, judged against the base model on the same items;
    then sweep.md (a table with 95% intervals) and plots/sweep.png (the paper's layout: win
    rate against the base model, or the harmless or refusal rate when there is no pairwise
    judge, vs each setting).

    The simulation options set what the grid leaves out. Example: matrix-align sweep --grid
    roles=1,3,5,7 --grid steps=1,2,4,8,16 --subset paper-50 --judge
    openai:gpt-4o,base-url=https://api.openai.com/v1 -o runs/sweep
    """
    from rich.console import Console

    from matrix_align.sweep.grid import parse_grid
    from matrix_align.sweep.run import SweepSpec, prepare

    console = Console(stderr=True)
    axes = parse_grid(grid)
    chosen_metrics = jo.checked_metrics(metrics)
    specs = judges.backends()
    template = _template(run, data, backend, simulation, chosen_metrics)
    spec = SweepSpec(axes=axes, template=template, base=None if base == "none" else base)
    prepared = prepare(spec, len(specs))  # every check that needs no model, before loading one
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(
        f"sweep: {len(spec.cells())} cells of matrix ({', '.join(a.key for a in axes)})"
        + (f" + the base entry {spec.base}" if spec.base else "")
        + f" on {', '.join(template.benchmarks)} with {template.model_key}",
        highlight=False,
    )
    result = run_async(
        _run(console, spec, prepared, specs, run=run, judges=judges, backend=backend)
    )
    _print_result(console, result)


def _template(
    run: SweepRun,
    data: BenchmarkData,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
    metrics: list[str] | None,
):  # noqa: ANN202
    """The settings every cell shares (the grid varies the simulation's), checked."""
    from matrix_align.evaluate.tasks import EvalSettings

    check_hub(data.hub)  # before the folder's checks
    shared = data_settings(data, run.output, backend, simulation, writable=True)
    return EvalSettings(systems=["matrix"], metrics=metrics, concurrency=run.concurrency, **shared)


async def _run(
    console: Any,
    spec: Any,
    prepared: Any,
    specs: list[JudgeBackend],
    *,
    run: SweepRun,
    judges: jo.JudgeOptions,
    backend: o.BackendOptions,
) -> Any:
    """One model and one set of judges for every cell, opened (built, checked) and closed
    in this loop."""
    from matrix_align.cli.evaluate_output import progress_bars
    from matrix_align.sweep.run import run_sweep

    def on_unit(name: str, entry: str, skipped: bool) -> None:
        state = "already finished, skipped" if skipped else "running"
        console.print(f"[bold]{escape(entry)}[/]: {state}", highlight=False)

    seed = spec.template.config.seed
    async with (
        (under_test := backend.replace(retries=run.retries)).open() as chat_model,
        judges.open(specs, under_test=under_test, seed=seed) as built,
    ):
        with progress_bars(console, run.quiet) as on_progress:
            return await run_sweep(
                spec, chat_model, built, prepared=prepared, on_unit=on_unit,
                on_progress=on_progress,
            )  # fmt: skip


def _print_result(console: Any, result: Any) -> None:
    from matrix_align.errors import EXIT_PARTIAL, RunFailed

    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    unfinished = [o for o in result.outcomes if not o.finished]
    for outcome in unfinished:
        console.print(
            f"[yellow]{escape(outcome.entry)}: {outcome.failed} answers or judgements failed[/]",
            highlight=False,
        )
    console.print(f"report: {result.report}", highlight=False)
    console.print(f"sweep table: {result.sweep_report}", highlight=False)
    if result.figure is not None:
        console.print(f"sweep figure: {result.figure}", highlight=False)
    if result.silent_judges:
        shown = "; ".join(f"{j} ({', '.join(m)})" for j, m in result.silent_judges.items())
        raise RunFailed(
            f"Every judgement of a requested judge failed: {shown}.",
            hint=f"see {result.output / 'errors.jsonl'}; check the judge, then rerun the same "
            "command (finished cells are skipped)",
        )
    if unfinished:
        console.print(
            f"[yellow]see {result.output / 'errors.jsonl'} and rerun the same command: "
            "finished cells are skipped, failed items retried[/]",
            highlight=False,
        )
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("sweep", epilog=EXIT_CODES_HELP)(sweep)
