"""Self-alignment, end to end: does a model tuned on MATRIX data answer more safely in one
call than its base, and than the same model tuned on simpler data?

The paper's headline loop, as one resumable pipeline over the project's own commands. Each
stage reads the previous one's files from the work folder, skips what is already done, and
can be run alone (``--stages``):

1. ``queries``: the committed training queries (``bench/self_alignment/queries.jsonl``:
   harmful requests from AdvBench and HarmfulQA rows that no evaluation uses, harmless
   questions from a Vicuna-Bench split the effect benchmark does not use, deduplicated
   against every evaluation item; ``--make-queries`` rebuilds it from the full benchmark
   files) split into the harmful and the harmless half;
2. ``answers``: ``matrix-align generate`` answers the harmful half through MATRIX and
   through critique-revise, and the harmless half directly (the paper's helpful half);
3. ``export``: four training sets on the same queries (a query is kept only where every
   system has a usable answer): the harmful half answered by (a) MATRIX, (b)
   critique-revise, (c) the model's own first answer (taken from inside the MATRIX scene:
   the self-distillation control), (d) one fixed refusal; the harmless half answered
   directly in all four. MATRIX rows the scene audit flags are dropped with their query;
4. ``train``: ``matrix-align train`` (LoRA SFT, one recipe and one step count for all)
   per set, each writing its adapter as GGUF for llama.cpp;
5. ``evaluate``: the effect benchmark (``bench/alignment_effect.py``) on the base model
   (alone and with MATRIX at inference) and on every tuned model in one call, then one
   table of the figures (``summary.json``, ``summary.md``).

    python bench/self_alignment.py --output runs/self-align                 # everything
    python bench/self_alignment.py --output runs/self-align --stages answers
    python bench/self_alignment.py --output runs/sa-quick --backend scripted --harmful 2 \\
        --harmless 2 --train-model PATH/TO/TINY --max-steps 2 --eval-limit 1

Killed at any point (Ctrl-C, kill -9), the same command resumes: ``generate`` and the effect
benchmark skip finished answers, ``train`` resumes from its last checkpoint, and the other
stages are rewritten whole (atomically) from their inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matrix_align.batch import now_iso
from matrix_align.data.dedup import deduplicate
from matrix_align.errors import MatrixAlignError
from matrix_align.io import atomic_write_json, atomic_write_text

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "self_alignment" / "queries.jsonl"
SETS_DIR = HERE / "self_alignment" / "sets"
EFFECT = HERE / "alignment_effect.py"
STAGES = ("queries", "answers", "export", "train", "evaluate")
# Training set -> what answers its harmful half.
TRAINING_SETS = ("matrix", "critique-revise", "self", "refuse")
# The "just refuse" baseline's one answer, written here.
FIXED_REFUSAL = "I'm sorry, but I can't help with that."
# Generation: the effect benchmark's scene size, answers long enough to train on whole.
SCENE = ["--roles", "2", "--steps", "2", "--max-tokens", "512", "--final-max-tokens", "512"]
# Where --make-queries draws from: (source, file under --datasets, rows the package ships
# as its evaluation sample, which are never drawn).
DRAWS = {"advbench": 0.5, "harmfulqa": 0.5}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- stage 1: queries -----------------------------------------------------------------------


def evaluation_prompts() -> list[str]:
    """Every prompt an evaluation here can use: the rows every built-in source ships (the
    offline evaluation pool), except Vicuna-Bench, whose rows the effect benchmark does not
    use are the harmless training split; its effect items stay references."""
    from matrix_align.data.sources import load_source, source_names

    sys.path.insert(0, str(HERE))
    from alignment_effect import MANIFEST

    manifest = json.loads(MANIFEST.read_text("utf-8"))
    effect_ids = {i for name in ("dev", "heldout") for ids in manifest[name].values() for i in ids}
    prompts = []
    for name in source_names():
        if name == "hh-helpful":  # ships no rows
            continue
        for record in load_source(name, hub="never").records:
            if name != "vicuna-bench" or record.id in effect_ids:
                prompts.append(record.prompt)
    return prompts


def make_queries(datasets: Path, harmful: int, harmless: int, seed: int = 0) -> dict[str, Any]:
    """Draw the training queries (see the module doc) and write ``QUERIES``; returns what
    was drawn and dropped, for the provenance file beside it."""
    import csv

    from matrix_align.data.sources import load_source

    references = evaluation_prompts()
    shipped = {name: {r.prompt for r in load_source(name, hub="never").records}
               for name in DRAWS}  # fmt: skip
    with open(datasets / "advbench" / "harmful_behaviors.csv", newline="", encoding="utf-8") as f:
        advbench = [(f"advbench/{i}", row["goal"]) for i, row in enumerate(csv.DictReader(f))]
    with open(datasets / "harmfulqa" / "harmfulqa_flat.jsonl", encoding="utf-8") as f:
        harmfulqa = [(f"harmfulqa/{r['id']}", r["question"]) for r in map(json.loads, f)]
    pools = {"advbench": advbench, "harmfulqa": harmfulqa}
    rows: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for name, pool in pools.items():
        pool = [(i, p) for i, p in pool if p not in shipped[name]]
        random.Random(f"{seed}:{name}").shuffle(pool)
        by_text = dict((p, i) for i, p in pool)
        kept, matches = deduplicate([p for _, p in pool], references + [r["prompt"] for r in rows])
        want = round(harmful * DRAWS[name])
        for prompt in kept[:want]:
            rows.append({"id": by_text[prompt], "source": name, "prompt": prompt, "harmful": True})
        cut = set(kept[:want])
        dropped += [m.__dict__ for m in matches if _before_last(pool, m.candidate, cut)]
    # Interleaved, so that the first N harmful queries (--harmful N) draw on both sources.
    rows = [r for pair in zip(*(
        [r for r in rows if r["source"] == name] for name in DRAWS)) for r in pair]  # fmt: skip
    vicuna = [r for r in load_source("vicuna-bench", hub="never").records
              if r.metadata.get("category") not in ("math", "coding")]  # fmt: skip
    random.Random(f"{seed}:vicuna-bench").shuffle(vicuna)
    kept, matches = deduplicate([r.prompt for r in vicuna], references)
    by_text = {r.prompt: r for r in vicuna}
    for prompt in kept[:harmless]:
        record = by_text[prompt]
        rows.append({"id": record.id, "source": "vicuna-bench", "prompt": prompt,
                     "harmful": False, "category": record.metadata.get("category")})  # fmt: skip
    dropped += [m.__dict__ for m in matches if _before_last(
        [(r.id, r.prompt) for r in vicuna], m.candidate, set(kept[:harmless]))]  # fmt: skip
    if sum(r["harmful"] for r in rows) < harmful or sum(not r["harmful"] for r in rows) < harmless:
        raise MatrixAlignError("Not enough candidate queries left after deduplication.")
    atomic_write_text(QUERIES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"seed": seed, "rows": len(rows), "dropped_as_duplicates": dropped}


def _before_last(pool: Sequence[tuple[str, str]], candidate: str, kept: set[str]) -> bool:
    """True when ``candidate`` came before the last kept query in draw order: a drop that
    changed which queries were drawn (later candidates were never looked at)."""
    order = [p for _, p in pool]
    last = max((order.index(p) for p in kept), default=-1)
    return order.index(candidate) < last


def stage_queries(out: Path, harmful: int, harmless: int) -> None:
    rows = [json.loads(line) for line in QUERIES.read_text("utf-8").splitlines() if line]
    halves = {
        "harmful": [r for r in rows if r["harmful"]][:harmful],
        "harmless": [r for r in rows if not r["harmful"]][:harmless],
    }
    for name, half in halves.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in half)
        atomic_write_text(out / "queries" / f"{name}.jsonl", text)
        log(f"queries: {len(half)} {name}")


# --- stage 2: answers -----------------------------------------------------------------------

# Generate folder -> (query half, answer mode).
ANSWER_RUNS = {
    "matrix": ("harmful", "matrix"),
    "direct": ("harmless", "direct"),
    "critique-revise": ("harmful", "critique-revise"),
}


def run(command: list[str]) -> None:
    """A stage's command, its output passed through; a failure stops the pipeline."""
    log("$ " + shlex.join(command))
    result = subprocess.run(command, check=False)
    if result.returncode not in (0,):
        raise MatrixAlignError(
            f"{command[0]} {command[1] if len(command) > 1 else ''} exited {result.returncode}.",
            hint="fix the cause above and rerun the same command: finished work is kept",
        )


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "matrix_align", *args]


def stage_answers(out: Path, backend: list[str]) -> None:
    for folder, (half, mode) in ANSWER_RUNS.items():
        run(cli(
            "generate", "--input", str(out / "queries" / f"{half}.jsonl"), "--input-mode", mode,
            "--output", str(out / "answers" / folder), "--hub", "never", "--quiet", *SCENE,
            *backend,
        ))  # fmt: skip


# --- stage 3: export ------------------------------------------------------------------------


def _samples(folder: Path) -> dict[str, dict[str, Any]]:
    """A generate folder's samples by their query's id."""
    path = folder / "samples.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return {r["meta"]["source_id"]: r for r in rows}


def _row(sample: dict[str, Any], answer: str, system: str) -> dict[str, Any]:
    return {
        "id": sample["meta"]["source_id"],
        "prompt": sample["prompt"],
        "completion": [{"role": "assistant", "content": answer}],
        "harmful": sample["meta"].get("harmful"),
        "answered_by": system,
    }


def build_sets(out: Path) -> dict[str, Any]:
    """The four training sets (see the module doc) in TRL's prompt-completion format."""
    from matrix_align.simulation.audit import DROP_BY_DEFAULT

    matrix = _samples(out / "answers" / "matrix")
    revised = _samples(out / "answers" / "critique-revise")
    direct = _samples(out / "answers" / "direct")
    flagged = {i for i, s in matrix.items() if set(s.get("flags") or []) & set(DROP_BY_DEFAULT)}
    harmful_ids = [i for i in matrix if i in revised and i not in flagged
                   and (matrix[i].get("initial_response") or "").strip()]  # fmt: skip
    helpful = [_row(s, s["completion"][0]["content"], "direct") for s in direct.values()]
    harmful_answers = {
        "matrix": lambda i: matrix[i]["completion"][0]["content"],
        "critique-revise": lambda i: revised[i]["completion"][0]["content"],
        "self": lambda i: matrix[i]["initial_response"],
        "refuse": lambda i: FIXED_REFUSAL,
    }
    sets = {}
    for name, answer in harmful_answers.items():
        rows = [_row(matrix[i], answer(i), name) for i in harmful_ids] + helpful
        sets[name] = rows
        path = out / "sets" / f"{name}.jsonl"
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {
        "harmful_rows": len(harmful_ids),
        "harmless_rows": len(helpful),
        "dropped": {
            "matrix_flagged": sorted(flagged),
            "missing_answer": sorted(set(matrix) ^ set(revised) | (set(matrix) - set(harmful_ids) - flagged)),
        },
    }


def stage_export(out: Path) -> None:
    info = build_sets(out)
    atomic_write_json(out / "sets" / "provenance.json", {"created_at": now_iso(), **info})
    log(f"export: {info['harmful_rows']} harmful + {info['harmless_rows']} harmless rows per set; "
        f"{len(info['dropped']['matrix_flagged'])} MATRIX rows dropped by the audit")  # fmt: skip


# --- stage 4: train -------------------------------------------------------------------------


def stage_train(out: Path, model: str, train_args: list[str]) -> None:
    for name in TRAINING_SETS:
        folder = out / "models" / name
        if (folder / "adapter" / "adapter_model.gguf").exists():
            log(f"train: {name} done")
            continue
        resume = ["--resume"] if (folder / "checkpoints").exists() else []
        run(cli("train", "--data", str(out / "sets" / f"{name}.jsonl"), "--model", model,
                "--output", str(folder), *resume, *train_args))  # fmt: skip


# --- stage 5: evaluate ----------------------------------------------------------------------


def entries(out: Path, base: str) -> dict[str, tuple[str, str]]:
    """Evaluation entry -> (model given to the effect benchmark, systems)."""
    return {
        "base": (base, "vanilla,matrix"),
        **{f"tuned-{name}": (str(out / "models" / name), "vanilla") for name in TRAINING_SETS},
    }


def stage_evaluate(out: Path, base: str, eval_set: str, effect_args: list[str]) -> None:
    figures: dict[str, Any] = {}
    for entry, (model, systems) in entries(out, base).items():
        folder = out / "eval" / eval_set / entry
        run([sys.executable, str(EFFECT), "--output", str(folder), "--set", eval_set,
             "--systems", systems, "--model", model, "--quiet", *effect_args])  # fmt: skip
        effect = json.loads((folder / "effect.json").read_text("utf-8"))
        for system, row in effect["entries"].items():
            figures[f"{entry}" if system == "vanilla" else f"{entry}+{system}"] = row
    atomic_write_json(out / "eval" / eval_set / "summary.json", figures)
    log("\n" + render_summary(figures))


def render_summary(figures: dict[str, Any]) -> str:
    lines = ["| model | harmful refused | harmless answered |", "|---|---|---|"]
    for name, row in figures.items():
        lines.append(f"| {name} | {_cell(row, 'harmful_refused')} | {_cell(row, 'harmless_answered')} |")
    return "\n".join(lines)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key) or {}
    return f"{value.get('k')}/{value.get('n')}"


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, help="work folder (created or resumed)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in order")
    p.add_argument("--harmful", type=int, default=32, help="harmful training queries")
    p.add_argument("--harmless", type=int, default=32, help="harmless training queries")
    p.add_argument("--backend", default="embedded", help="generates the answers")
    p.add_argument("--model", default="qwen2.5-coder-1.5b", help="the model that is aligned")
    p.add_argument("--train-model", help="model to tune (default: --model); another one "
                   "makes the run distillation, not self-alignment")  # fmt: skip
    p.add_argument("--max-steps", type=int, help="training steps per set (default: 2 epochs)")
    p.add_argument("--eval-set", choices=("dev", "heldout"), default="dev")
    p.add_argument("--eval-limit", type=int, help="first N items per benchmark")
    p.add_argument("--make-queries", type=Path, metavar="DATASETS",
                   help="rebuild the committed queries from the full AdvBench and HarmfulQA "
                   "files in DATASETS/{advbench,harmfulqa}/ and exit")  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.make_queries is not None:
            info = make_queries(args.make_queries, args.harmful, args.harmless)
            atomic_write_json(QUERIES.with_suffix(".provenance.json"), info)
            print(f"wrote {QUERIES}: {info['rows']} queries")
            return 0
        if args.output is None:
            raise MatrixAlignError("--output DIR is needed.")
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise MatrixAlignError(f"Unknown stage(s) {unknown}.", hint=f"stages: {STAGES}")
        out: Path = args.output
        out.mkdir(parents=True, exist_ok=True)
        backend = ["--backend", args.backend, "--model", args.model]
        train_args = ["--max-steps", str(args.max_steps)] if args.max_steps else []
        effect_args = ["--backend", args.backend]
        if args.eval_limit:
            effect_args += ["--limit-per-group", str(args.eval_limit)]
        timings = {}
        for stage in STAGES:
            if stage not in stages:
                continue
            started = time.perf_counter()
            if stage == "queries":
                stage_queries(out, args.harmful, args.harmless)
            elif stage == "answers":
                stage_answers(out, backend)
            elif stage == "export":
                stage_export(out)
            elif stage == "train":
                stage_train(out, args.train_model or args.model, train_args)
            else:
                stage_evaluate(out, args.model, args.eval_set, effect_args)
            timings[stage] = round(time.perf_counter() - started, 1)
            log(f"{stage}: {timings[stage]} s")
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
