"""``matrix-align generate``: many queries -> an SFT / preference dataset, resumable.

Everything that can be checked is checked before the first model call, in this order:
source specs, simulation settings, input files and sources (loaded in full), the output
folder's settings, then the backend (opened: built and checked). The run itself is
``data.generate``; this module checks the options (``generate_options``) and shows
progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from matrix_align.cli import options as o
from matrix_align.cli.generate_options import CallDelay, GenerateData, GenerateRun
from matrix_align.cli.listings import list_sources
from matrix_align.cli.run_config import with_run_config
from matrix_align.cli.runner import run_async


def _live_completion_tokens(model: Any) -> int | None:
    """Completion tokens counted so far by the AccountingModel in the wrapper stack, so the
    tokens/s figure moves during long scenes, not only when a sample finishes."""
    seen = 0
    while model is not None and seen < 10:
        stats = getattr(model, "stats", None)
        if stats is not None and hasattr(stats, "completion_tokens"):
            return int(stats.completion_tokens)
        model = getattr(model, "inner", None)
        seen += 1
    return None


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@with_run_config
def generate(
    run: GenerateRun,
    data: GenerateData,
    estimate: o.DryRunOptions,
    call_delay: CallDelay = 0.0,
    *,
    backend: o.BackendOptions,
    simulation: o.SimulationOptions,
) -> None:
    """Generate an alignment dataset: MATRIX answers for harmful queries, the model's own
    answers for helpful ones, as TRL-ready files.

    Example: matrix-align generate --source advbench:matrix:20 --source vicuna-bench:direct:10
    --output runs/demo
    """
    if data.list_only:
        list_sources()
        return
    from rich.console import Console

    from matrix_align.data.generate import check_output, export_into_summary
    from matrix_align.errors import MatrixAlignError
    from matrix_align.folders.records import model_key
    from matrix_align.io import writable_folder

    console = Console(stderr=True)
    if run.output is None:
        raise MatrixAlignError("generate needs --output FOLDER.", hint="e.g. --output runs/demo")
    estimate.check()
    specs = data.specs()
    config = simulation.config()
    key = model_key(backend.backend, backend.model)
    plan = data.plan(specs, config, key)
    check_output(run.output, config=config, model_key=key)
    if not estimate.dry_run:
        writable_folder(run.output, "--output", keep=False)  # the run's lock makes it
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if estimate.dry_run:
        from matrix_align.data.dry_run import estimate_generate

        estimate.print(estimate_generate(plan, config, run.output, backend=backend.backend))
        return
    summary = run_async(
        _run(plan, config, console, run=run, backend=backend, data=data, call_delay=call_delay)
    )
    if run.export:
        with console.status("writing exports (jsonl, parquet, datasets folder)…"):
            export_into_summary(
                run.output, summary, include_substeps=data.with_substeps,
                substeps=data.substeps, seed=config.seed,
            )  # fmt: skip
    _print_summary(console, summary, run.output)
    _exit_for(summary, run.output)


def _exit_for(summary: dict[str, Any], output: Path) -> None:
    """Exit 1 when the dataset has failures and no sample at all, 3 when it has both, else
    return (exit 0). Counts are the dataset's, so a resumed run is judged on the whole."""
    from matrix_align.errors import EXIT_PARTIAL, RunFailed

    counts = summary["counts"]
    if not counts["failed"]:
        return
    if not counts["done"]:
        reasons = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items())
        raise RunFailed(
            f"Every sample failed ({reasons}); nothing was generated.",
            hint=f"see {output / 'errors.jsonl'}; check the backend, then rerun the same command",
        )
    raise typer.Exit(EXIT_PARTIAL)


async def _run(
    plan: Any,
    config: Any,
    console: Any,
    *,
    run: GenerateRun,
    backend: o.BackendOptions,
    data: GenerateData,
    call_delay: float,
) -> dict[str, Any]:
    """Open the backend (built, checked, closed at the end), then run, in one event loop
    (clients hold connections that belong to the loop they were made in)."""
    from matrix_align.data.generate import GenerateOptions, generate
    from matrix_align.folders.records import model_key
    from matrix_align.llm.wrappers import DelayedModel

    async with backend.replace(retries=run.retries).open() as opened:
        chat_model: Any = DelayedModel(opened, call_delay) if call_delay > 0 else opened
        model_info = {
            "key": model_key(backend.backend, backend.model), "backend": backend.backend,
            "name": getattr(chat_model, "name", ""), "base_urls": len(backend.base_url),
            "parallel": backend.slots,
        }  # fmt: skip
        # Exports are written after the progress display has closed (see generate()).
        concurrency = run.scenes(backend)
        options = GenerateOptions(
            output=run.output, concurrency=concurrency, abort_after=run.abort_after,
            include_substeps=data.with_substeps, export=False,
        )  # fmt: skip
        total = len(plan.items)
        console.print(
            f"generating {total} samples into {run.output} with {backend.backend} "
            f"({model_info['name'] or 'default model'}), {concurrency} scenes in flight",
            highlight=False,
        )
        async with _live_bar(console, total, chat_model, quiet=run.quiet) as on_progress:
            return await generate(
                plan, chat_model, config, options, model_info=model_info, on_progress=on_progress
            )


@contextlib.asynccontextmanager
async def _live_bar(console: Any, total: int, chat_model: Any, *, quiet: bool) -> Any:
    """A live progress bar (samples, failures, rate, tokens/s, ETA), refreshed on each
    sample and every second; yields its callback (None when quiet)."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from matrix_align.batch import ProgressState

    base_tokens = _live_completion_tokens(chat_model) or 0
    progress = Progress(
        TextColumn("[bold]generate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("{task.fields[rate]:.1f} samples/min"),
        TextColumn("{task.fields[tps]:.0f} tok/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("[dim]{task.fields[in_flight]} in flight"),
        console=console,
        transient=False,
    )
    task = progress.add_task("generate", total=total, failed=0, rate=0.0, tps=0.0, eta="--:--",
                             in_flight=0)  # fmt: skip
    latest: list[ProgressState] = []

    def refresh() -> None:
        if not latest:
            return
        state = latest[-1]
        live = _live_completion_tokens(chat_model)
        tokens = (live - base_tokens) if live is not None else state.usage.completion_tokens
        elapsed = state.elapsed_s
        progress.update(
            task,
            completed=state.done + state.failed,
            failed=state.failed,
            rate=state.samples_per_minute,
            tps=tokens / elapsed if elapsed > 0 else 0.0,
            eta=_fmt_eta(state.eta_s),
            in_flight=state.in_flight,
        )

    def on_progress(state: ProgressState) -> None:
        latest[:] = [state]
        refresh()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            refresh()

    with progress:
        ticking = asyncio.create_task(ticker())
        try:
            yield on_progress
        finally:
            ticking.cancel()
            refresh()


def _print_summary(console: Any, summary: dict[str, Any], output: Path) -> None:
    counts = summary["counts"]
    run = summary["this_run"]
    if run["attempted"] == 0:
        console.print(
            f"nothing to do: all {counts['done']} planned samples are already in "
            f"{output / 'samples.jsonl'}",
            highlight=False,
        )
    else:
        console.print(
            f"done {counts['done']}/{counts['planned']}, failed {counts['failed']}, pending "
            f"{counts['pending']}; this run: {run['completed']} samples in "
            f"{run['wall_time_s']:.1f} s ({run['samples_per_minute']:.1f}/min, "
            f"{run['completion_tokens_per_s']:.0f} tok/s)",
            highlight=False,
        )
    if summary["failures_by_reason"]:
        reasons = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items())
        console.print(
            f"[red]failures:[/] {reasons} (see {output / 'errors.jsonl'}; rerun to retry them)",
            highlight=False,
        )
    for note in summary.get("notes", []):
        if "shipped sample" not in note and "CC BY-NC" not in note:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if "exports" in summary:
        rows = ", ".join(f"{fmt} {info['rows']}" for fmt, info in summary["exports"].items())
        console.print(
            f"exports: {output / 'exports'} (jsonl, parquet, hf): {rows} rows", highlight=False
        )
    if "export_substeps" in summary:
        from matrix_align.data.substeps import describe

        console.print(describe(summary["export_substeps"]), highlight=False)


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("generate", epilog=EXIT_CODES_HELP)(generate)
