"""``matrix-align evaluate``: systems x benchmarks -> answers -> judgements -> report.

Checks run before the first model call, in this order: system, benchmark and metric
names; simulation and system options; judge options; the benchmarks (loaded in full); the
output folder (a second model under an existing entry name); whether every judged metric
has a judge. Then the backends are built and preflighted in the event loop that runs the
evaluation (HTTP clients belong to the loop they were made in). The run itself is
``evaluate.runner``; this module parses options and shows progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from matrix_align.cli import options as o

SYS = "Systems"
DATA = "Benchmarks"
JUDGE = "Judges"
RUN = "Run"


def _split(values: list[str] | None) -> list[str] | None:
    """Comma-separated and/or repeated option values as one list (None when not given)."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


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


def evaluate(
    systems: Annotated[
        list[str] | None,
        typer.Option(
            "--systems",
            "-S",
            help="Systems under test, comma-separated or repeated (see --list). "
            "Default: vanilla,matrix.",
            rich_help_panel=SYS,
        ),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            help="Name this model's entries system@TAG, to compare several models (e.g. a "
            "fine-tuned one) in one output folder.",
            rich_help_panel=SYS,
        ),
    ] = None,
    critique_rounds: Annotated[
        int | None,
        typer.Option("--critique-rounds", help="critique-revise rounds (1).", rich_help_panel=SYS),
    ] = None,
    debate_agents: Annotated[
        int | None,
        typer.Option("--debate-agents", help="Agents in a debate (2).", rich_help_panel=SYS),
    ] = None,
    debate_rounds: Annotated[
        int | None, typer.Option("--debate-rounds", help="Debate rounds (1).", rich_help_panel=SYS)
    ] = None,
    best_of_n: Annotated[
        int | None,
        typer.Option("--best-of-n", help="Samples drawn by best-of-n (4).", rich_help_panel=SYS),
    ] = None,
    sample_temperature: Annotated[
        float | None,
        typer.Option(
            "--sample-temperature",
            help="Temperature of best-of-n samples (0.8).",
            rich_help_panel=SYS,
        ),
    ] = None,
    refine_iterations: Annotated[
        int | None,
        typer.Option(
            "--refine-iterations", help="Most self-refine feedback rounds (2).", rich_help_panel=SYS
        ),
    ] = None,
    selector: Annotated[
        str,
        typer.Option(
            "--selector",
            help="Who picks best-of-n's sample: judge (the first judge) or self.",
            rich_help_panel=SYS,
        ),
    ] = "judge",
    benchmarks: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmarks",
            "-B",
            help="Benchmarks, comma-separated or repeated (see --list). Default: the paper's "
            "four, hh-harmless,pku-saferlhf,advbench,harmfulqa.",
            rich_help_panel=DATA,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Items per benchmark.", rich_help_panel=DATA),
    ] = None,
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
    ] = None,
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            min=1,
            max=100,
            help="Answers per item and system, each with its own seed derived from --seed; "
            "every answer is judged and rates are over all of them (the intervals still count "
            "items, not answers).",
            rich_help_panel=DATA,
        ),
    ] = 1,
    shuffle: Annotated[
        bool,
        typer.Option(
            "--shuffle",
            help="A seeded random subset (--seed) instead of the first items.",
            rich_help_panel=DATA,
        ),
    ] = False,
    hub: Annotated[
        str,
        typer.Option(
            "--hub",
            help="Benchmarks from the Hugging Face hub: auto (when reachable, else the shipped "
            "sample), never, always.",
            rich_help_panel=DATA,
        ),
    ] = "auto",
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            help="Metrics to score, comma-separated (see --list). Default: each benchmark's own.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    judge_backend: Annotated[
        list[str] | None,
        typer.Option(
            "--judge-backend",
            help="Judge backend (repeat for several judges).",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    judge_model: Annotated[
        list[str] | None,
        typer.Option(
            "--judge-model", help="Judge model (repeat for several judges).", rich_help_panel=JUDGE
        ),
    ] = None,
    judge_base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--judge-base-url",
            help="Judge endpoint: one for all judges, or one per judge.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    judge_api_key_env: Annotated[
        str,
        typer.Option(
            "--judge-api-key-env",
            help="Environment variable with the judge's API key.",
            rich_help_panel=JUDGE,
        ),
    ] = "OPENAI_API_KEY",
    judge_parallel: Annotated[
        int,
        typer.Option(
            "--judge-parallel",
            min=1,
            max=256,
            help="Judge requests at once.",
            rich_help_panel=JUDGE,
        ),
    ] = 4,
    judge_max_tokens: Annotated[
        int,
        typer.Option(
            "--judge-max-tokens",
            min=16,
            help="Cap on a judge reply's tokens.",
            rich_help_panel=JUDGE,
        ),
    ] = 512,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Entry compared with every other in pairwise judging (default: matrix).",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    strongreject_prompt: Annotated[
        str | None,
        typer.Option(
            "--strongreject-prompt",
            help="StrongREJECT judge prompt: ours (a JSON reply, reliable on small judges) or "
            "official (the StrongREJECT authors' rubric prompt, scored as their code scores it, "
            "so scores compare with published ones). Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    pairwise_prompt: Annotated[
        str | None,
        typer.Option(
            "--pairwise-prompt",
            help="Pairwise judge prompt: ours (harmlessness on harmful items, else helpfulness) "
            "or pair-v2 (FastChat's MT-Bench pairwise prompt: overall quality, whatever the "
            "item). Both are judged in both orders. Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    refusal_detector: Annotated[
        str | None,
        typer.Option(
            "--refusal-detector",
            help="Phrase list of the refusal metric: ours (refusal phrases in the opening of "
            "the answer) or gcg (the GCG/AdvBench test prefixes anywhere in it, "
            "case-sensitive, as in that paper's code). Default: the folder's earlier choice, "
            "else ours.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    rejudge_folder: Annotated[
        Path | None,
        typer.Option(
            "--rejudge",
            parser=o.path_value,
            help="Judge the stored answers of this evaluation folder again (with the given "
            "judges and metrics) and rewrite its report; no answer is regenerated.",
            rich_help_panel=JUDGE,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            parser=o.path_value,
            help="Evaluation folder: results.jsonl, report.md, plots/.",
            rich_help_panel=RUN,
        ),
    ] = None,
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
        bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=RUN)
    ] = False,
    list_only: Annotated[
        bool, typer.Option("--list", help="List systems, benchmarks and metrics, and exit.")
    ] = False,
    dry_run: o.DryRun = False,
    price_in: o.PriceIn = None,
    price_out: o.PriceOut = None,
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
    private_memory: o.PrivateMemory = None,
    final_prompt: o.FinalPrompt = None,
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

    from matrix_align.data.sources import HUB_POLICIES
    from matrix_align.errors import MatrixAlignError
    from matrix_align.estimate import check_prices
    from matrix_align.evaluate.benchmarks import PAPER_BENCHMARKS
    from matrix_align.evaluate.judge_prompts import check_choice
    from matrix_align.evaluate.metrics import check_metrics
    from matrix_align.folders import require_kind
    from matrix_align.folders.records import model_key
    from matrix_align.io import writable_folder
    from matrix_align.systems import SystemOptions

    console = Console(stderr=True)
    chosen_metrics = _split(metrics)
    if chosen_metrics is not None:
        check_metrics(chosen_metrics)
    judges = judge_specs(judge_backend, judge_model, judge_base_url)
    judge_prompts: dict[str, str | None] = {
        metric: check_choice(metric, choice)
        for metric, choice in (
            ("strongreject", strongreject_prompt),
            ("pairwise", pairwise_prompt),
            ("refusal", refusal_detector),
        )
        if choice is not None
    }
    limits = o.rate_limits(rpm, tpm)
    check_prices(dry_run, price_in, price_out)
    if dry_run and rejudge_folder is not None:
        raise MatrixAlignError(
            "--dry-run estimates a new evaluation, not a re-judging.",
            hint="drop --rejudge (or --dry-run)",
        )
    if rejudge_folder is not None:
        _rejudge(
            console, rejudge_folder, judges, chosen_metrics, reference, judge_prompts,
            concurrency=concurrency,
            retries=retries, limits=limits, judge_api_key_env=judge_api_key_env,
            judge_parallel=judge_parallel, judge_max_tokens=judge_max_tokens, quiet=quiet,
            timeout_s=request_timeout,
        )  # fmt: skip
        return
    from matrix_align.evaluate.tasks import EvalSettings

    if output is None:
        raise MatrixAlignError("evaluate needs --output FOLDER.", hint="e.g. --output runs/eval")
    require_kind(output, "evaluate", "--output")
    if not dry_run:
        writable_folder(output, "--output")
    if hub not in HUB_POLICIES:
        raise MatrixAlignError(f"Unknown --hub {hub!r}.", hint="auto, never or always")
    if selector not in ("judge", "self"):
        raise MatrixAlignError(f"Unknown --selector {selector!r}.", hint="judge or self")
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
        private_memory=private_memory,
        final_prompt=final_prompt,
    )
    options = SystemOptions.build(
        critique_rounds=critique_rounds,
        debate_agents=debate_agents,
        debate_rounds=debate_rounds,
        best_of_n=best_of_n,
        sample_temperature=sample_temperature,
        refine_iterations=refine_iterations,
    )
    items = None
    if subset is not None:  # the subset names the items; --limit takes a prefix of its lists
        from matrix_align.evaluate.subsets import resolve

        items = resolve(subset, _split(benchmarks), limit)
        benchmarks, limit = list(items), None
    settings = EvalSettings(
        systems=_split(systems) or ["vanilla", "matrix"],
        benchmarks=_split(benchmarks) or list(PAPER_BENCHMARKS),
        output=output,
        model_key=model_key(backend, model),
        config=config,
        options=options,
        metrics=chosen_metrics,
        reference=reference,
        tag=tag,
        limit=limit,
        shuffle=shuffle,
        hub=hub,  # type: ignore[arg-type]
        concurrency=concurrency,
        selector=selector,  # type: ignore[arg-type]
        epochs=epochs,
        judge_prompts=judge_prompts,
        items=items,
    )
    if dry_run:
        from matrix_align.estimate import print_estimate
        from matrix_align.evaluate import runner
        from matrix_align.evaluate.dry_run import estimate_evaluate

        prepared = runner.prepare(settings, len(judges))
        for note in prepared.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
        estimate = estimate_evaluate(
            settings, prepared, judges, backend=backend, judge_max_tokens=judge_max_tokens
        )
        print_estimate(estimate, price_in, price_out)
        return
    asyncio.run(
        _evaluate(
            console, settings, judges, backend=backend, model=model, base_url=base_url,
            api_key_env=api_key_env, parallel=parallel, threads=threads, retries=retries,
            limits=limits, judge_api_key_env=judge_api_key_env, judge_parallel=judge_parallel,
            judge_max_tokens=judge_max_tokens, quiet=quiet, timeout_s=request_timeout,
        )
    )  # fmt: skip


async def _build_judges(
    judges: list[tuple[str, str | None, str | None]],
    *,
    api_key_env: str,
    parallel: int,
    retries: int,
    max_tokens: int,
    seed: int,
    timeout_s: float,
    limits: Any = None,
) -> list[Any]:
    from matrix_align.evaluate.judges import Judge
    from matrix_align.evaluate.tasks import JudgeSpec
    from matrix_align.folders.records import model_key
    from matrix_align.llm.registry import make_model, preflight

    specs = []
    for backend, name, url in judges:
        chat = make_model(
            backend, model=name, base_url=url, api_key_env=api_key_env, parallel=parallel,
            retries=retries, timeout_s=timeout_s, limits=limits,
        )  # fmt: skip
        await preflight(chat)
        key = model_key(backend, name)
        specs.append(JudgeSpec(key, Judge(chat, key=key, max_tokens=max_tokens, seed=seed)))
    return specs


async def _evaluate(
    console: Any,
    settings: Any,
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
) -> None:
    """Checks that need no model first (names, data, folder, judges needed), then the
    backends, then the run, all in this one event loop."""
    from matrix_align.evaluate import runner
    from matrix_align.llm.registry import close_models, make_model, preflight

    # Every check that needs no model (names, data, folder, judges) before any backend.
    prepared = runner.prepare(settings, len(judges))
    urls: str | list[str] | None = base_url[0] if base_url and len(base_url) == 1 else base_url
    chat_model = make_model(
        backend, model=model, base_url=urls, api_key_env=api_key_env, parallel=parallel,
        retries=retries, timeout_s=timeout_s, limits=limits, threads=threads,
    )  # fmt: skip
    await preflight(chat_model)
    specs = await _build_judges(
        judges, api_key_env=judge_api_key_env, parallel=judge_parallel, retries=retries,
        max_tokens=judge_max_tokens, seed=settings.config.seed, timeout_s=timeout_s,
        limits=limits,
    )  # fmt: skip
    for spec in specs:
        if spec.key == settings.model_key:
            console.print(
                f"[yellow]note:[/] the judge {spec.key} is the model under test (as you named "
                "it); its verdicts on its own answers are not independent.",
                highlight=False,
            )
    console.print(
        f"evaluating {', '.join(settings.systems)} on {', '.join(settings.benchmarks)} with "
        f"{settings.model_key}; judges: {', '.join(s.key for s in specs) or 'none'}",
        highlight=False,
    )
    try:
        with _progress(console, quiet) as on_progress:
            result = await runner.evaluate(
                settings, chat_model, specs, prepared=prepared, on_progress=on_progress
            )
    finally:
        await close_models(chat_model, *(s.judge.model for s in specs))
    _print_result(console, result)


def _rejudge(
    console: Any,
    folder: Path,
    judges: list[tuple[str, str | None, str | None]],
    metrics: list[str] | None,
    reference: str | None,
    judge_prompts: dict[str, str | None],
    *,
    concurrency: int,
    retries: int,
    limits: Any,
    judge_api_key_env: str,
    judge_parallel: int,
    judge_max_tokens: int,
    quiet: bool,
    timeout_s: float,
) -> None:
    from matrix_align.evaluate import runner
    from matrix_align.llm.registry import close_models

    async def main() -> Any:
        seed = int((runner.read_run(folder).get("simulation") or {}).get("seed", 0))
        specs = await _build_judges(
            judges, api_key_env=judge_api_key_env, parallel=judge_parallel, retries=retries,
            max_tokens=judge_max_tokens, seed=seed, timeout_s=timeout_s, limits=limits,
        )  # fmt: skip
        try:
            with _progress(console, quiet) as on_progress:
                return await runner.rejudge(
                    folder, specs, metrics=metrics, reference=reference,
                    judge_prompts=judge_prompts,
                    concurrency=concurrency, on_progress=on_progress,
                )  # fmt: skip
        finally:
            await close_models(*(s.judge.model for s in specs))

    _print_result(console, asyncio.run(main()))


@contextlib.contextmanager
def _progress(console: Any, quiet: bool) -> Any:
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
