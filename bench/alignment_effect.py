"""Alignment effect: does MATRIX refuse harmful requests, answer harmless ones, and never make
the model's own first answer worse? Measured on a fixed item manifest with evaluate.

A thin layer over ``matrix-align evaluate``'s machinery: it runs ``evaluate`` (systems
vanilla, matrix and critique-revise by default; the refusal-phrase detector, no judge) on the
items of ``bench/effect_items.json`` (``dev`` or ``heldout``) into an evaluation folder,
then prints the figures of ``matrix_align.research.effect`` (refused / answered / made worse
with Wilson 95% intervals, cost per answer, the scene audit, per benchmark, a reading
sample) and writes them to ``effect.json`` in the folder. Rerunning resumes: finished
answers are skipped.

``--replay DIR`` re-runs only the late stages (consequence, summary, final answer) of DIR's
MATRIX scenes with other settings (``--final-prompt``, ``--final-max-tokens``,
``--temperature``, ``--seed``) and adds them as a new entry (``matrix@final-NAME``), so
final-answer designs are compared on the same scenes in minutes.

    python bench/alignment_effect.py --output runs/effect-dev --set dev
    python bench/alignment_effect.py --output runs/quick --limit-per-group 2 --backend scripted
    python bench/alignment_effect.py --replay runs/effect-dev --final-prompt authors
    python bench/alignment_effect.py --output runs/effect-dev-paper --config paper --tag paper
    python bench/alignment_effect.py --make-manifest   # rewrite bench/effect_items.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from matrix_align.batch import now_iso
from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.runner import ProgressFn, evaluate, rejudge
from matrix_align.evaluate.tasks import EvalSettings
from matrix_align.folders import read_run
from matrix_align.folders.records import model_key
from matrix_align.io import atomic_write_json, parse_assignments
from matrix_align.llm.base import ChatModel
from matrix_align.research.effect import as_json, folder_effect, render_effect
from matrix_align.simulation.config import SimulationConfig
from matrix_align.systems import SystemOptions

MANIFEST = Path(__file__).with_name("effect_items.json")
EFFECT_FILE = "effect.json"
SETS = ("dev", "heldout")
# Answers are capped for refusal detection: the detector reads an answer's first 300
# characters, so long answers cost time without changing the figures.
MAX_TOKENS, FINAL_MAX_TOKENS = 384, 512

# --- the manifest -------------------------------------------------------------------------

# benchmark -> (dev count, heldout count); harmful sources first, then the harmless ones.
DRAW = {
    "advbench": (8, 3),
    "harmfulqa": (8, 3),
    "strongreject": (8, 3),
    "harmbench": (8, 3),
    "xstest": (20, 8),
    "vicuna-bench": (10, 4),
}
MAX_PROMPT = 300
ABOUT = (
    "Items of bench/alignment_effect.py, drawn from the shipped samples (--hub never) by "
    "make_manifest(seed={seed}): per benchmark, the records with prompts under {limit} "
    "characters, without HarmBench contextual and copyright rows, XSTest unsafe rows, and "
    "vicuna-bench math and coding questions, shuffled with random.Random('{seed}:NAME'); the "
    "first ones go to dev, the next to heldout (ids listed in sample order). Counts: {counts}. "
    "This file is the truth; --make-manifest regenerates it."
)


def eligible(record: Any) -> bool:
    meta = record.metadata
    return (
        len(record.prompt) < MAX_PROMPT
        and meta.get("functional_category", "standard") == "standard"  # HarmBench
        and meta.get("label", "safe") == "safe"  # XSTest
        and meta.get("category") not in ("math", "coding")  # vicuna-bench
    )


def make_manifest(seed: int = 0) -> dict[str, Any]:
    """Disjoint dev and heldout item lists from the shipped samples (see ``ABOUT``)."""
    from matrix_align.data.sources import load_source

    sets: dict[str, dict[str, list[str]]] = {name: {} for name in SETS}
    for name, (n_dev, n_held) in DRAW.items():
        records = [r for r in load_source(name, hub="never").records if eligible(r)]
        order = {r.id: i for i, r in enumerate(records)}
        drawn = [r.id for r in records]
        random.Random(f"{seed}:{name}").shuffle(drawn)
        if len(drawn) < n_dev + n_held:
            raise MatrixAlignError(f"{name}: only {len(drawn)} eligible items.")
        sets["dev"][name] = sorted(drawn[:n_dev], key=order.__getitem__)
        sets["heldout"][name] = sorted(drawn[n_dev : n_dev + n_held], key=order.__getitem__)
    counts = "; ".join(f"{s}: " + ", ".join(f"{n} {b}" for b, n in _sizes(sets[s])) for s in SETS)
    return {"_about": ABOUT.format(seed=seed, limit=MAX_PROMPT, counts=counts), **sets}


def _sizes(items: dict[str, list[str]]) -> list[tuple[str, int]]:
    return [(name, len(ids)) for name, ids in items.items()]


def load_items(
    path: Path = MANIFEST, set_name: str = "dev", limit_per_group: int | None = None
) -> dict[str, list[str]]:
    """One set of the manifest (benchmark -> ids), the first N per benchmark if asked."""
    if limit_per_group is not None and limit_per_group < 1:
        raise MatrixAlignError("--limit-per-group must be at least 1.")
    data = json.loads(Path(path).read_text("utf-8"))
    if set_name not in data or set_name.startswith("_"):
        raise MatrixAlignError(f"{path} has no set {set_name!r}.", hint=f"one of: {SETS}")
    return {name: ids[:limit_per_group] for name, ids in data[set_name].items()}


# --- runs ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _check_set(output: Path, set_name: str) -> None:
    """One folder, one item set: dev and heldout figures must never be pooled."""
    path = output / EFFECT_FILE
    if path.exists():
        stored = json.loads(path.read_text("utf-8")).get("set")
        if stored and stored != set_name:
            raise MatrixAlignError(
                f"{output} holds the {stored!r} set, not {set_name!r}.",
                hint="use another --output folder for each set",
            )


def _write(output: Path, header: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    effect = {**header, **as_json(figures)}
    atomic_write_json(output / EFFECT_FILE, effect)
    return effect


async def run_effect(
    output: Path,
    items: dict[str, list[str]],
    model: ChatModel,
    key: str,
    *,
    systems: list[str],
    config: SimulationConfig,
    set_name: str = "dev",
    options: SystemOptions | None = None,
    tag: str | None = None,
    seeds: int = 1,
    concurrency: int = 8,
    sample: int = 6,
    on_progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer ``items`` with ``systems`` into the evaluation folder ``output`` (resumable),
    ``seeds`` times each (evaluate's epochs), score refusals, write ``effect.json``; returns
    (header, figures)."""
    output = Path(output)
    _check_set(output, set_name)
    settings = EvalSettings(
        systems=systems,
        benchmarks=list(items),
        output=output,
        model_key=key,
        config=config,
        options=options or SystemOptions(),
        tag=tag,
        metrics=["refusal"],
        items=items,
        epochs=seeds,
        concurrency=concurrency,
    )
    started = time.perf_counter()
    result = await evaluate(settings, model, [], on_progress=on_progress)
    stats = result.answer_stats
    header = {
        "date": now_iso(),
        "machine": machine(),
        "model": key,
        "set": set_name,
        "items": {name: len(ids) for name, ids in items.items()},
        "systems": systems,
        "seeds": seeds,
        "simulation": config.model_dump(mode="json"),
        "this_run": {
            "wall_s": round(time.perf_counter() - started, 1),
            "answers_new": stats.completed if stats else 0,
            "answers_failed": stats.failed if stats else 0,
        },
        "notes": result.notes,
    }
    figures = folder_effect(output, sample=sample, items=items, seeds=seeds)
    _write(output, header, figures)
    return header, figures


async def run_replay(
    folder: Path,
    model: ChatModel,
    key: str,
    overrides: dict[str, Any],
    *,
    tag: str | None = None,
    entry: str = "matrix",
    concurrency: int = 8,
    sample: int = 6,
    on_progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay the scenes of ``folder``'s matrix ``entry`` with ``overrides`` as a new entry,
    rescore and rewrite ``effect.json`` over every entry; returns (header, figures)."""
    from matrix_align.research.replay import replay_folder

    folder = Path(folder)
    started = time.perf_counter()
    result = await replay_folder(
        folder, model, key, overrides, tag=tag, source_entry=entry,
        concurrency=concurrency, on_progress=on_progress,
    )  # fmt: skip
    await rejudge(folder, [], metrics=["refusal"], concurrency=concurrency)  # report.md too
    stored = folder / EFFECT_FILE
    previous = json.loads(stored.read_text("utf-8")) if stored.exists() else {}
    header = {
        "date": now_iso(),
        "machine": machine(),
        "model": key,
        "set": previous.get("set"),
        "items": previous.get("items"),
        "systems": previous.get("systems"),
        "seeds": previous.get("seeds"),
        "simulation": read_run(folder).get("simulation"),
        "replay": {"entry": result.entry, **result.overrides},
        "this_run": {
            "wall_s": round(time.perf_counter() - started, 1),
            "answers_new": result.stats.completed,
            "answers_failed": result.stats.failed,
        },
        "notes": result.notes,
    }
    # The folder may hold more samples than its run asked for (a longer run stopped partway).
    figures = folder_effect(folder, sample=sample, seeds=header["seeds"])
    _write(folder, header, figures)
    return header, figures


def render_header(header: dict[str, Any]) -> str:
    m, sim = header["machine"], header.get("simulation") or {}
    lines = [
        f"date: {header['date']}",
        f"machine: {m['cores']} cores, load average {' '.join(map(str, m['load_average']))}, "
        f"{m['platform']}, Python {m['python']}",
        f"model: {header['model']}",
    ]
    if header.get("set"):
        items = header.get("items") or {}
        lines.append(
            f"items: {header['set']} set, {sum(items.values())} "
            f"({', '.join(f'{n} {b}' for b, n in items.items())})"
        )
    if header.get("systems"):
        seeds = header.get("seeds") or 1
        lines.append(
            f"systems: {', '.join(header['systems'])}"
            + (f"; {seeds} seeds per item, figures of the majority decision" if seeds > 1 else "")
        )
    if sim:
        lines.append(
            f"scene: {sim.get('n_roles')} roles x {sim.get('n_steps')} steps, reactions "
            f"{sim.get('reactions', 'separate')}, final prompt "
            f"{sim.get('final_prompt')}, temperature {sim.get('temperature')}, seed "
            f"{sim.get('seed')}; max tokens {sim.get('max_tokens')} per call, "
            f"{sim.get('final_max_tokens')} for the final answer (sized for refusal "
            "detection, which reads the first 300 characters)"
        )
    if header.get("replay"):
        replay = dict(header["replay"])
        lines.append(
            f"replay: {replay.pop('entry')} ({', '.join(f'{k}={v}' for k, v in replay.items())})"
        )
    run = header["this_run"]
    lines.append(
        f"this run: {run['answers_new']} new answers, {run['answers_failed']} failed, "
        f"{run['wall_s']} s"
        + (" (see errors.jsonl; rerun the same command to retry)" if run["answers_failed"] else "")
    )
    lines += [f"note: {n}" for n in header.get("notes") or []]
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, help="evaluation folder (created or resumed)")
    p.add_argument("--set", dest="set_name", choices=SETS, default="dev")
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--systems", default="vanilla,matrix,critique-revise")
    p.add_argument(
        "--config", metavar="FILE|NAME",
        help="simulation settings: a YAML file or a profile (paper); the options below win",
    )  # fmt: skip
    p.add_argument(
        "--setting", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
        help="one simulation setting over --config (repeatable; matrix-align's --set), "
        "e.g. --setting intent_event=true",
    )  # fmt: skip
    p.add_argument("--roles", type=int, default=2)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--final-prompt", choices=("verdict", "system", "authors"))
    p.add_argument("--reactions", choices=("joint", "separate"), help="default: joint")
    p.add_argument(
        "--keep-refusals",
        action=argparse.BooleanOptionalAction,
        help="verdict design: keep a first answer's refusal whatever the scene shows",
    )
    p.add_argument("--max-tokens", type=int, help=f"per call (default {MAX_TOKENS})")
    p.add_argument(
        "--final-max-tokens", type=int, help=f"final answer (default {FINAL_MAX_TOKENS})"
    )
    p.add_argument("--temperature", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--seeds", type=int, default=1,
        help="samples of each item, each at its own seed: adds decision stability and the "
        "majority decision's figures (a rerun with more seeds keeps the answers it has)",
    )  # fmt: skip
    p.add_argument("--backend", default="embedded")
    p.add_argument("--model", help="model name or path (default: the backend's default)")
    p.add_argument("--base-url", help="for --backend openai")
    p.add_argument("--parallel", type=int, default=4, help="requests the backend serves at once")
    p.add_argument("--concurrency", type=int, default=8, help="answers in flight")
    p.add_argument("--threads", type=int, help="llama.cpp threads (embedded)")
    p.add_argument("--limit-per-group", type=int, help="first N items of each benchmark")
    p.add_argument("--sample", type=int, default=6, help="items in the reading sample")
    p.add_argument("--replay", type=Path, metavar="DIR", help="replay DIR's matrix scenes")
    p.add_argument(
        "--replay-entry",
        default="matrix",
        metavar="ENTRY",
        help="the entry whose scenes --replay takes (default: matrix; e.g. matrix@paper)",
    )
    p.add_argument(
        "--critique-rounds",
        type=int,
        help="critique-revise rounds (default 1); more rounds match MATRIX's compute",
    )
    p.add_argument("--tag", help="entry tag, system@TAG (a replay's default: from the settings)")
    p.add_argument("--make-manifest", action="store_true", help="rewrite --manifest and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from rich.console import Console

    from matrix_align.cli.evaluate_output import progress_bars
    from matrix_align.llm.spec import BackendSpec

    key = model_key(args.backend, args.model)
    spec = BackendSpec(
        args.backend,
        model=args.model,
        base_url=args.base_url,
        parallel=args.parallel,
        threads=args.threads,
    )
    console = Console(stderr=True)
    async with spec.open() as chat:
        with progress_bars(console, args.quiet) as on_progress:
            sets = parse_assignments(args.set_values, example="--setting intent_event=true")
            if args.replay is not None:
                overrides = {
                    **sets,
                    "final_prompt": args.final_prompt,
                    "keep_refusals": args.keep_refusals,
                    "final_max_tokens": args.final_max_tokens,
                    "temperature": args.temperature,
                    "seed": args.seed,
                }
                return await run_replay(
                    args.replay, chat, key, overrides, tag=args.tag, entry=args.replay_entry,
                    concurrency=args.concurrency, sample=args.sample, on_progress=on_progress,
                )  # fmt: skip
            config = SimulationConfig.load(
                args.config,
                sets=sets,
                overrides=dict(
                n_roles=args.roles,
                n_steps=args.steps,
                final_prompt=args.final_prompt,
                reactions=args.reactions,
                keep_refusals=args.keep_refusals,
                max_tokens=args.max_tokens or MAX_TOKENS,
                final_max_tokens=args.final_max_tokens or FINAL_MAX_TOKENS,
                temperature=args.temperature,
                seed=args.seed,
                ),
            )  # fmt: skip
            items = load_items(args.manifest, args.set_name, args.limit_per_group)
            return await run_effect(
                args.output, items, chat, key,
                systems=[s.strip() for s in args.systems.split(",") if s.strip()],
                config=config, set_name=args.set_name, tag=args.tag, seeds=args.seeds,
                options=SystemOptions.build(critique_rounds=args.critique_rounds),
                concurrency=args.concurrency,
                sample=args.sample, on_progress=on_progress,
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.make_manifest:
            manifest = make_manifest()
            args.manifest.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
            print(f"wrote {args.manifest}: {manifest['_about']}")
            return 0
        if args.replay is None and args.output is None:
            raise MatrixAlignError("--output DIR is needed (or --replay DIR).")
        header, figures = asyncio.run(_main(args))
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_header(header))
    print()
    print(render_effect(figures))
    print(f"\nfigures: {(args.replay or args.output) / EFFECT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
