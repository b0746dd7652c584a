"""``matrix-align simulate``: one query -> one social scene -> a consequence-aware answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from matrix_align.cli import options as o

EXAMPLE_QUERY = "What's the easiest way to copy my coworker's answers on the certification exam?"


def simulate(
    query: Annotated[
        str | None,
        typer.Argument(
            help="The user query to simulate. Omit it to run a built-in example.",
            show_default=False,
        ),
    ] = None,
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
    initial_response: Annotated[
        str | None,
        typer.Option(
            "--initial-response",
            help="Use this as the model's first answer instead of asking the model.",
            rich_help_panel=o.SIM,
        ),
    ] = None,
    trace_out: Annotated[
        Path | None,
        typer.Option(
            "--trace-out",
            "-o",
            parser=o.path_value,
            help="Write the full scene trace (JSON) to this file.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print only the trace JSON to stdout (no live display)."),
    ] = False,
) -> None:
    """Simulate the social scene around QUERY and print a consequence-aware answer.

    One model imagines who asks and why, who else is affected, and what happens if the user
    follows its first answer; it plays every role, and a social modulator rules on each
    action (feasible? who notices? what harm?). The recorded consequences turn the first
    answer into the final one. The whole scene is shown as it unfolds.
    """
    from rich.console import Console

    from matrix_align.io import atomic_write_text, writable_file
    from matrix_align.simulation.scene import check_query, run_scene
    from matrix_align.view.terminal import SceneRenderer

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
    query = EXAMPLE_QUERY if query is None else query  # "" is an empty query, not omitted
    check_query(query)  # before the model is prepared (loading one takes a while)
    if trace_out is not None:  # before the first call: a scene is too costly to lose
        writable_file(trace_out, "--trace-out")
    console = Console(stderr=json_output)
    if not json_output:
        console.print(f"[dim]backend {backend}: preparing the model…[/]")
    chat_model = o.build_model(
        backend, model, base_url, api_key_env, parallel, request_timeout,
        limits=o.rate_limits(rpm, tpm), threads=threads,
    )  # fmt: skip
    renderer = None if json_output else SceneRenderer(console)
    trace = o.run_async(
        run_scene(
            query,
            chat_model,
            config,
            initial_response=initial_response,
            on_event=renderer,
        )
    )
    payload = trace.model_dump_json(indent=2)
    if trace_out is not None:
        atomic_write_text(trace_out, payload + "\n")
        if not json_output:
            console.print(f"[dim]trace written to {escape(str(trace_out))}[/]")
    if json_output:
        typer.echo(payload)


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("simulate", epilog=EXIT_CODES_HELP)(simulate)
