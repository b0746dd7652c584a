"""``matrix-align evaluate``: systems x benchmarks -> answers -> judgements -> report.

Checks run before the first model call, in this order: system, benchmark and metric
names; simulation and system options; judge options; the benchmarks (loaded in full); the
output folder (a second model under an existing entry name); whether every judged metric
has a judge. Then the backends are opened (built, checked, and closed at the end: ``async
with spec.open()``) in the event loop that runs the evaluation (HTTP clients belong to the
loop they were made in). The run itself is
``evaluate.runner``; this module checks the options (``evaluate_options``) and runs it,
showing progress (``evaluate_output``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from matrix_align.cli import options as o
from matrix_align.cli.data_options import BenchmarkData
from matrix_align.cli.evaluate_options import (
    EvalJudging,
    EvalRun,
    EvalSystems,
    ListOnly,
    Metrics,
    data_settings,
)
from matrix_align.cli.evaluate_output import print_result, progress_bars
from matrix_align.cli.judge_options import JudgeOptions, checked_metrics, split_values
from matrix_align.cli.listings import list_evaluate_choices
from matrix_align.cli.run_config import with_run_config
from matrix_align.cli.runner import run_async

if TYPE_CHECKING:
    from matrix_align.evaluate.judge_backends import JudgeBackend


@with_run_config
def evaluate(
    systems: EvalSystems,
    data: BenchmarkData,
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
    advbench,harmfulqa --limit 50 --judge openai:gpt-4o,base-url=https://api.openai.com/v1
    --output runs/eval
    """
    if list_only:
        list_evaluate_choices()
        return
    from rich.console import Console

    from matrix_align.errors import MatrixAlignError

    console = Console(stderr=True)
    chosen_metrics = checked_metrics(metrics)
    specs = judges.backends()
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
    data: BenchmarkData,
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


def _dry_run(
    console: Any,
    settings: Any,
    specs: list[JudgeBackend],
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
    specs: list[JudgeBackend],
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
    print_result(console, result)


def _rejudge(
    console: Any,
    judging: EvalJudging,
    specs: list[JudgeBackend],
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

    print_result(console, run_async(main()))


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("evaluate", epilog=EXIT_CODES_HELP)(evaluate)
