"""``matrix-align sweep``: MATRIX over a grid of simulation settings, each cell an evaluate
entry in one folder, then the paper's figure (a metric against the base model as a function of
each setting) and a table with 95% intervals.

The checks run before any model is loaded: the grid and every cell's settings, names,
items, the folder, a judge for every judged metric. The work is ``evaluate.sweep``; this
module parses options and reports per cell.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from matrix_align.cli import judge_options as jo
from matrix_align.cli import options as o

DATA = "Benchmarks"
RUN = "Run"


def sweep(
    grid: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help="A simulation setting and its values, KEY=V1,V2,... (repeat for more "
            "settings; every combination is a cell). KEY is a simulation option's name "
            "(roles, steps, depth, memory-budget, strictness, reactions, final-prompt, "
            "temperature, seed...) or its config field (n_roles...).",
            show_default=False,
        ),
    ],
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
    ],
    base: Annotated[
        str,
        typer.Option(
            "--base",
            help="The base model's system, answered once and compared with every cell "
            "(the pairwise reference); 'none' for no base.",
        ),
    ] = "vanilla",
    benchmarks: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmarks",
            "-B",
            help="Benchmarks, comma-separated (see `evaluate --list`). Default: the paper's "
            "four, or the subset's.",
            rich_help_panel=DATA,
        ),
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option(
            "--subset",
            help="A pinned item list (quick, paper-50, pku-human-eval, or a manifest .json), "
            "read from the shipped samples; --limit keeps the first N of each benchmark.",
            rich_help_panel=DATA,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Items per benchmark.", rich_help_panel=DATA),
    ] = None,
    shuffle: Annotated[
        bool,
        typer.Option(
            "--shuffle",
            help="A seeded random subset instead of the first items.",
            rich_help_panel=DATA,
        ),
    ] = False,
    hub: Annotated[
        str,
        typer.Option(
            "--hub", help="Benchmarks from the hub: auto, never, always.", rich_help_panel=DATA
        ),
    ] = "auto",
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            min=1,
            max=100,
            help="Answers per item and cell, each with its own seed.",
            rich_help_panel=DATA,
        ),
    ] = 1,
    metrics: jo.Metrics = None,
    judge_backend: jo.JudgeBackend = None,
    judge_model: jo.JudgeModel = None,
    judge_base_url: jo.JudgeBaseUrl = None,
    judge_api_key_env: jo.JudgeApiKeyEnv = "OPENAI_API_KEY",
    judge_parallel: jo.JudgeParallel = 4,
    judge_max_tokens: jo.JudgeMaxTokens = 512,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=4096,
            help="Answers or judgements in flight.",
            rich_help_panel=RUN,
        ),
    ] = 8,
    retries: Annotated[
        int,
        typer.Option(
            "--retries", min=0, max=20, help="Retries of a failed request.", rich_help_panel=RUN
        ),
    ] = 3,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars.", rich_help_panel=RUN)
    ] = False,
    backend: o.Backend = "embedded",
    model: o.Model = None,
    base_url: o.BaseUrl = None,
    api_key_env: o.ApiKeyEnv = "OPENAI_API_KEY",
    parallel: o.Parallel = None,
    threads: o.Threads = None,
    request_timeout: o.RequestTimeout = 300.0,
    rpm: o.Rpm = None,
    tpm: o.Tpm = None,
    config_file: o.ConfigFile = None,
    roles: o.Roles = None,
    steps: o.Steps = None,
    depth: o.Depth = None,
    memory_budget: o.MemoryBudget = None,
    adaptive_plan: o.AdaptivePlan = None,
    strictness: o.Strictness = None,
    seed: o.Seed = None,
    temperature: o.Temperature = None,
    max_tokens: o.MaxTokens = None,
    final_max_tokens: o.FinalMaxTokens = None,
    reactions: o.Reactions = None,
    final_prompt: o.FinalPrompt = None,
) -> None:
    """Run MATRIX over a grid of simulation settings: each cell is an evaluate entry
    (matrix@roles=3,steps=2) in one folder, judged against the base model on the same items;
    then sweep.md (a table with 95% intervals) and plots/sweep.png (the paper's layout: win
    rate against the base model, or the harmless or refusal rate when there is no pairwise
    judge, vs each setting).

    The simulation options set what the grid leaves out. Example: matrix-align sweep --grid
    roles=1,3,5,7 --grid steps=1,2,4,8 --subset paper-50 --judge-backend openai
    --judge-model gpt-4o --judge-base-url https://api.openai.com/v1 -o runs/sweep
    """
    from rich.console import Console

    from matrix_align.cli.evaluate import _split, judge_specs
    from matrix_align.data.sources import HUB_POLICIES
    from matrix_align.errors import MatrixAlignError
    from matrix_align.evaluate.benchmarks import PAPER_BENCHMARKS
    from matrix_align.evaluate.grid import parse_grid
    from matrix_align.evaluate.metrics import check_metrics
    from matrix_align.evaluate.sweep import SweepSpec, prepare
    from matrix_align.evaluate.tasks import EvalSettings
    from matrix_align.folders import require_kind
    from matrix_align.folders.records import model_key
    from matrix_align.io import writable_folder

    console = Console(stderr=True)
    axes = parse_grid(grid)
    chosen_metrics = _split(metrics)
    if chosen_metrics is not None:
        check_metrics(chosen_metrics)
    judges = judge_specs(judge_backend, judge_model, judge_base_url)
    limits = o.rate_limits(rpm, tpm)
    if hub not in HUB_POLICIES:
        raise MatrixAlignError(f"Unknown --hub {hub!r}.", hint="auto, never or always")
    require_kind(output, "evaluate", "--output")
    writable_folder(output, "--output")
    config = o.simulation_config(
        config_file,
        n_roles=roles,
        n_steps=steps,
        reaction_depth=depth,
        memory_budget=memory_budget,
        adaptive_plan=adaptive_plan,
        strictness=strictness,
        seed=seed,
        temperature=temperature,
        max_tokens=max_tokens,
        final_max_tokens=final_max_tokens,
        reactions=reactions,
        final_prompt=final_prompt,
    )
    items = None
    bench_names = _split(benchmarks)
    if subset is not None:
        from matrix_align.evaluate.subsets import resolve

        items = resolve(subset, bench_names, limit)
        bench_names, limit = list(items), None
    template = EvalSettings(
        systems=["matrix"],
        benchmarks=bench_names or list(PAPER_BENCHMARKS),
        output=output,
        model_key=model_key(backend, model),
        config=config,
        metrics=chosen_metrics,
        limit=limit,
        shuffle=shuffle,
        hub=hub,  # type: ignore[arg-type]
        concurrency=concurrency,
        epochs=epochs,
        items=items,
    )
    spec = SweepSpec(axes=axes, template=template, base=None if base == "none" else base)
    prepared = prepare(spec, len(judges))  # every check that needs no model, before loading one
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    cells = spec.cells()
    console.print(
        f"sweep: {len(cells)} cells of matrix ({', '.join(a.key for a in axes)})"
        + (f" + the base entry {spec.base}" if spec.base else "")
        + f" on {', '.join(template.benchmarks)} with {template.model_key}",
        highlight=False,
    )
    result = asyncio.run(
        _run(
            console,
            spec,
            prepared,
            judges,
            backend=backend,
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            parallel=parallel,
            threads=threads,
            retries=retries,
            limits=limits,
            judge_api_key_env=judge_api_key_env,
            judge_parallel=judge_parallel,
            judge_max_tokens=judge_max_tokens,
            quiet=quiet,
            timeout_s=request_timeout,
        )
    )
    _print_result(console, result)


async def _run(
    console: Any,
    spec: Any,
    prepared: Any,
    judges: list[tuple[str, str | None, str | None]],
    *,
    backend: str,
    model: str | None,
    base_url: list[str] | None,
    api_key_env: str,
    parallel: int | None,
    threads: int | None,
    retries: int,
    limits: Any,
    judge_api_key_env: str,
    judge_parallel: int,
    judge_max_tokens: int,
    quiet: bool,
    timeout_s: float,
) -> Any:
    """One model and one set of judges for every cell, built and closed in this loop."""
    from matrix_align.cli.evaluate import _build_judges, _progress
    from matrix_align.evaluate.sweep import run_sweep
    from matrix_align.llm.registry import close_models, make_model, preflight

    urls: str | list[str] | None = base_url[0] if base_url and len(base_url) == 1 else base_url
    chat_model = make_model(
        backend,
        model=model,
        base_url=urls,
        api_key_env=api_key_env,
        parallel=parallel,
        retries=retries,
        timeout_s=timeout_s,
        limits=limits,
        threads=threads,
    )
    await preflight(chat_model)
    specs = await _build_judges(
        judges,
        api_key_env=judge_api_key_env,
        parallel=judge_parallel,
        retries=retries,
        max_tokens=judge_max_tokens,
        seed=spec.template.config.seed,
        timeout_s=timeout_s,
        limits=limits,
    )

    def on_unit(name: str, entry: str, skipped: bool) -> None:
        state = "already finished, skipped" if skipped else "running"
        console.print(f"[bold]{escape(entry)}[/]: {state}", highlight=False)

    try:
        with _progress(console, quiet) as on_progress:
            return await run_sweep(
                spec,
                chat_model,
                specs,
                prepared=prepared,
                on_unit=on_unit,
                on_progress=on_progress,
            )
    finally:
        await close_models(chat_model, *(s.judge.model for s in specs))


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
