"""What ``evaluate`` shows on the terminal: a progress bar per phase (``sweep`` and the
benches use it too), and the closing lines of a run or a re-judging with the exit code they
earn."""

from __future__ import annotations

import contextlib
from typing import Any

import typer
from rich.markup import escape


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


def print_result(console: Any, result: Any) -> None:
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
    exit_for(result)


def exit_for(result: Any) -> None:
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
            hint=f"see {result.output / 'errors.jsonl'}; check the judge (its --judge spec: "
            "model, base-url, api-key-env), then rerun the same command to retry the judgements",
        )
    answers = result.answer_stats
    if answers is not None and answers.failed and not answers.completed + answers.skipped_done:
        raise RunFailed(
            f"Every answer failed ({answers.failed}); nothing was evaluated.",
            hint=f"see {result.output / 'errors.jsonl'}; check the backend, then rerun",
        )
    if (answers is not None and answers.failed) or result.judge_stats.failed:
        raise typer.Exit(EXIT_PARTIAL)
