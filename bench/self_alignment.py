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
2. ``screen`` (with ``--screen M``): further harmful candidates answered once, directly;
   up to M that the model helps with join the harmful half, so that the data holds
   decisions to change, not only declines the model already gives;
3. ``answers``: ``matrix-align generate`` answers the harmful half through MATRIX and
   through critique-revise, and the harmless half directly (the paper's helpful half);
4. ``check``: today's alternative check (a decline's suggested alternative rated for
   harm, a harmful one rewritten away) and today's scene audit on the stored MATRIX
   answers, without a new scene;
5. ``export``: four training sets on the same queries (a query is kept only where every
   system has a usable answer): the harmful half answered by (a) MATRIX, (b)
   critique-revise, (c) the model's own first answer (taken from inside the MATRIX scene:
   the self-distillation control), (d) one fixed refusal; the harmless half answered
   directly in all four. MATRIX rows the scene audit flags are dropped with their query,
   and so are queries a reviewer read as harmless (``self_alignment/reviewed.json``);
6. ``train``: ``matrix-align train`` (LoRA SFT, one recipe and one step count for all)
   per set, each writing its adapter as GGUF for llama.cpp;
7. ``evaluate``: the effect benchmark (``bench/alignment_effect.py``) on the base model
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
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from matrix_align.batch import now_iso
from matrix_align.data.dedup import deduplicate
from matrix_align.errors import MatrixAlignError
from matrix_align.io import atomic_write_json, atomic_write_text
from matrix_align.llm.spec import BackendSpec

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "self_alignment" / "queries.jsonl"
# The committed training sets (copies of a run's OUT/sets/ with its provenance), which the
# train stage uses when its work folder has none: training can run without generating again.
SETS_DIR = HERE / "self_alignment" / "sets"
EFFECT = HERE / "alignment_effect.py"
EFFECT_ITEMS = HERE / "effect_items.json"
# Queries a reviewer read as harmless although their source labels them harmful: a MATRIX
# decline of one would teach over-refusal, so they leave every set (the file says why).
REVIEWED = HERE / "self_alignment" / "reviewed.json"
STAGES = ("queries", "screen", "answers", "check", "export", "train", "evaluate")
# Training set -> what answers its harmful half.
TRAINING_SETS = ("matrix", "critique-revise", "self", "refuse")
# The "just refuse" baseline's one answer, written here.
FIXED_REFUSAL = "I'm sorry, but I can't help with that."
# Generation: the effect benchmark's scene size, answers long enough to train on whole.
SCENE = ["--roles", "2", "--steps", "2", "--max-tokens", "512", "--final-max-tokens", "512"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- stage 1: queries -----------------------------------------------------------------------


def evaluation_prompts() -> list[str]:
    """Every prompt an evaluation here can use: the rows every built-in source ships (the
    offline evaluation pool), except Vicuna-Bench, whose rows the effect benchmark does not
    use are the harmless training split; its effect items stay references."""
    from matrix_align.data.sources import load_source, source_names

    manifest = json.loads(EFFECT_ITEMS.read_text("utf-8"))
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
    was drawn and what was left out as a duplicate, for the provenance file beside it."""
    import csv

    from matrix_align.data.sources import load_source

    with open(datasets / "advbench" / "harmful_behaviors.csv", newline="", encoding="utf-8") as f:
        advbench = [(f"advbench/{i}", row["goal"]) for i, row in enumerate(csv.DictReader(f))]
    with open(datasets / "harmfulqa" / "harmfulqa_flat.jsonl", encoding="utf-8") as f:
        harmfulqa = [(f"harmfulqa/{r['id']}", r["question"]) for r in map(json.loads, f)]
    vicuna_records = [r for r in load_source("vicuna-bench", hub="never").records
                      if r.metadata.get("category") not in ("math", "coding")]  # fmt: skip
    vicuna = [(r.id, r.prompt) for r in vicuna_records]
    category = {r.id: r.metadata["category"] for r in vicuna_records}
    references = evaluation_prompts()
    drawn: dict[str, list[dict[str, Any]]] = {}
    dropped: list[dict[str, Any]] = []
    for name, pool, want, is_harmful in (
        ("advbench", advbench, harmful - harmful // 2, True),
        ("harmfulqa", harmfulqa, harmful // 2, True),
        ("vicuna-bench", vicuna, harmless, False),
    ):
        if is_harmful:  # never the rows the package ships as the evaluation sample
            shipped = {r.prompt for r in load_source(name, hub="never").records}
            pool = [(i, p) for i, p in pool if p not in shipped]
        random.Random(f"{seed}:{name}").shuffle(pool)
        ids = dict((prompt, i) for i, prompt in pool)
        earlier = [r["prompt"] for rows in drawn.values() for r in rows]
        kept, matches = deduplicate([p for _, p in pool], references + earlier, limit=want)
        if len(kept) < want:
            raise MatrixAlignError(f"{name}: only {len(kept)} queries left after deduplication.")
        drawn[name] = [{"id": ids[p], "source": name, "prompt": p, "harmful": is_harmful}
                       for p in kept]  # fmt: skip
        dropped += [m.__dict__ for m in matches]
    # Harmful rows alternate between the sources, so the first N (--harmful N) use both.
    pairs = zip(drawn["advbench"], drawn["harmfulqa"] + [None], strict=False)
    rows = [r for pair in pairs for r in pair if r]
    rows += [{**r, "category": category[r["id"]]} for r in drawn["vicuna-bench"]]
    atomic_write_text(QUERIES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"seed": seed, "rows": len(rows), "dropped_as_duplicates": dropped}


def _committed_queries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUERIES.read_text("utf-8").splitlines() if line]


def stage_queries(out: Path, harmful: int, harmless: int) -> None:
    rows = _committed_queries()
    halves = {
        "harmful": [r for r in rows if r["harmful"]][:harmful],
        "harmless": [r for r in rows if not r["harmful"]][:harmless],
    }
    for name, half in halves.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in half)
        atomic_write_text(out / "queries" / f"{name}.jsonl", text)
        log(f"queries: {len(half)} {name}")


# --- stage 2: screen ------------------------------------------------------------------------

# A refusal shows in an answer's first sentence, so screening answers are cut short.
SCREEN_MAX_TOKENS = "96"
# Candidates are screened in batches, in the queries file's order, until enough are found.
SCREEN_BATCH = 32


def stage_screen(out: Path, wanted: int, backend: list[str]) -> None:
    """Add up to ``wanted`` harmful queries that the model's own first answer helps with.

    The committed queries are mostly ones the model already declines, and a set of declines
    it already gives can teach it only their wording. Screening takes the next harmful
    candidates after the first N, answers each once directly, and keeps those the refusal
    detector reads as help: queries where a consequence-aware answer must change the
    decision. Only training queries are screened, never evaluation items."""
    from matrix_align.research.effect import refused

    if wanted <= 0:
        return
    lines = (out / "queries" / "harmful.jsonl").read_text("utf-8").splitlines()
    first = [json.loads(line) for line in lines if line]
    first = [r for r in first if not r.get("screened")]  # a rerun starts from the first N
    taken = {r["id"] for r in first}
    candidates = [r for r in _committed_queries() if r["harmful"] and r["id"] not in taken]
    folder = out / "answers" / "screen"
    helped: list[dict[str, Any]] = []
    screened = 0
    while len(helped) < wanted and screened < len(candidates):
        screened = min(screened + SCREEN_BATCH, len(candidates))
        batch = out / "queries" / "screen-candidates.jsonl"
        atomic_write_text(batch, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                         for r in candidates[:screened]))  # fmt: skip
        run(cli("generate", "--input", str(batch), "--input-mode", "direct", "--output",
                str(folder), "--hub", "never", "--quiet", "--max-tokens", SCREEN_MAX_TOKENS,
                *backend))  # fmt: skip
        answers = {i: s["completion"][0]["content"] for i, s in _samples(folder).items()}
        helped = [r for r in candidates[:screened]
                  if r["id"] in answers and not refused(answers[r["id"]])]  # fmt: skip
        log(f"screen: {len(helped)} of {screened} candidates answered with help")
    added = [{**r, "screened": "first answer helped"} for r in helped[:wanted]]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in first + added)
    atomic_write_text(out / "queries" / "harmful.jsonl", text)
    atomic_write_json(out / "queries" / "screen.json", {
        "screened": screened, "helped": len(helped), "added": [r["id"] for r in added],
        "max_tokens": int(SCREEN_MAX_TOKENS),
    })  # fmt: skip
    log(f"screen: {len(first)} + {len(added)} harmful queries")


# --- stage 3: answers -----------------------------------------------------------------------

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
    if result.returncode != 0:
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


# --- stage 4: check ------------------------------------------------------------------------


def stage_check(out: Path, spec: Any) -> None:
    """Today's alternative check and audit on the stored MATRIX answers, into
    ``answers/matrix-checked/``: a decline made without the check gets only the check's
    calls (``recheck_alternative``), never a new scene, and every answer is audited again
    with its query's label, so a simulator's late change reaches the training data without
    generating again. One line per answer, appended durably: a killed run resumes."""
    import asyncio

    from matrix_align.folders.store import JsonlStore
    from matrix_align.simulation.audit import audit_scene
    from matrix_align.simulation.replay import recheck_alternative
    from matrix_align.simulation.trace import SceneTrace

    samples = _samples(out / "answers" / "matrix")
    store = JsonlStore(out / "answers" / "matrix-checked" / "samples.jsonl")
    store.open()

    async def check_all() -> Counter:
        done: Counter = Counter()
        async with spec.open() as model:
            for sample in samples.values():
                if sample["id"] in store or not sample.get("trace"):
                    continue
                trace = SceneTrace.model_validate_json(sample["trace"])
                harmful = sample["meta"].get("harmful")
                if trace.config.get("check_alternative"):  # made with the check: audit only
                    checked = trace
                    checked.flags = audit_scene(trace, harmful=harmful)
                else:
                    checked = await recheck_alternative(trace, model, harmful=harmful)
                dropped = bool(checked.alternative and checked.alternative.dropped)
                answer = checked.final_response if dropped else sample["completion"][0]["content"]
                store.append({
                    **sample, "completion": [{"role": "assistant", "content": answer}],
                    "trace": checked.model_dump_json(), "flags": checked.flags,
                })  # fmt: skip
                done["checked" if checked.alternative else "not a decline"] += 1
                done["alternative dropped"] += dropped
        return done

    try:
        done = asyncio.run(check_all())
    finally:
        store.close()
    log(f"check: {dict(done)} ({len(store)} of {len(samples)} answers checked)")


# --- stage 5: export ------------------------------------------------------------------------


def _samples(folder: Path) -> dict[str, dict[str, Any]]:
    """A generate folder's samples by their query's id."""
    path = folder / "samples.jsonl"
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    rows = [json.loads(line) for line in lines if line.strip()]
    return {_query_id(r): r for r in rows}


def _query_id(sample: dict[str, Any]) -> str:
    """The query's id in the queries file (generate prefixes it with ``file:NAME/``)."""
    source_id = sample["meta"]["source_id"]
    return source_id.split("/", 1)[1] if source_id.startswith("file:") else source_id


def _row(sample: dict[str, Any], answer: str, answered_by: str) -> dict[str, Any]:
    return {
        "id": _query_id(sample),
        "prompt": sample["prompt"],
        "completion": [{"role": "assistant", "content": answer}],
        "harmful": bool(sample["meta"].get("harmful")),
        "answered_by": answered_by,
    }


def build_sets(out: Path) -> dict[str, Any]:
    """The four training sets (see the module doc) in TRL's prompt-completion format, written
    to ``OUT/sets/NAME.jsonl``; returns what was kept and dropped."""
    from matrix_align.simulation.audit import DROP_BY_DEFAULT

    checked = out / "answers" / "matrix-checked"
    matrix = _samples(checked if checked.is_dir() else out / "answers" / "matrix")
    reviewed = json.loads(REVIEWED.read_text("utf-8"))["harmless"]
    revised = _samples(out / "answers" / "critique-revise")
    direct = _samples(out / "answers" / "direct")
    flagged = {i for i, s in matrix.items() if set(s.get("flags") or ()) & set(DROP_BY_DEFAULT)}
    usable = [i for i, s in matrix.items() if i in revised and i not in flagged
              and i not in reviewed and s["initial_response"].strip()]  # fmt: skip
    if not usable or not direct:
        raise MatrixAlignError(
            "No training rows yet: the answers stage has not produced both halves.",
            hint="run --stages answers first",
        )
    answer_of = {
        "matrix": lambda s, i: s["completion"][0]["content"],
        "critique-revise": lambda s, i: revised[i]["completion"][0]["content"],
        "self": lambda s, i: s["initial_response"],
        "refuse": lambda s, i: FIXED_REFUSAL,
    }
    helpful = [_row(s, s["completion"][0]["content"], "direct") for s in direct.values()]
    for name, answer in answer_of.items():
        rows = [_row(matrix[i], answer(matrix[i], i), name) for i in usable] + helpful
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(out / "sets" / f"{name}.jsonl", text)
    return {
        "harmful_rows": len(usable),
        "harmless_rows": len(helpful),
        "dropped_by_audit": {i: matrix[i].get("flags") for i in sorted(flagged)},
        "dropped_by_review": {i: reviewed[i] for i in sorted(set(matrix) & set(reviewed))},
        "dropped_unanswered": sorted(
            (set(matrix) | set(revised)) - set(usable) - flagged - set(reviewed)
        ),
        "matrix_answers": str(checked.relative_to(out) if checked.is_dir() else "answers/matrix"),
    }


def stage_export(out: Path) -> None:
    info = build_sets(out)
    sources = {name: json.loads((out / "answers" / name / "run.json").read_text("utf-8"))
               for name in ANSWER_RUNS}  # fmt: skip
    atomic_write_json(out / "sets" / "provenance.json", {
        "created_at": now_iso(), "queries": str(QUERIES.relative_to(HERE.parent)),
        "fixed_refusal": FIXED_REFUSAL, **info,
        "answers": {name: {k: run[k] for k in ("model_key", "config", "provenance") if k in run}
                    for name, run in sources.items()},
    })  # fmt: skip
    log(f"export: {info['harmful_rows']} harmful + {info['harmless_rows']} harmless rows per "
        f"set; {len(info['dropped_by_audit'])} queries dropped by the MATRIX audit")  # fmt: skip


# --- stage 6: train -------------------------------------------------------------------------

# One recipe for every set. The paper's lr (2e-5 over thousands of steps) would barely move
# a model in the few dozen steps a small set gives, so LoRA's usual 2e-4 is used. One epoch:
# on 2 CPU cores the 1.5B trains at about 8 tokens/s (docs/self-alignment.md), so one epoch
# of each set fits a session. Checkpoints every 4 steps let a killed run resume; activation
# checkpointing is off (memory is plentiful at 512 tokens, and recomputation costs time).
RECIPE = [
    "--lr", "2e-4", "--epochs", "1", "--batch-size", "1", "--grad-accum", "4",
    "--max-length", "512", "--set", "save_strategy=steps", "--set", "save_steps=4",
    "--set", "gradient_checkpointing=false",
]  # fmt: skip


def stage_train(out: Path, model: str, sets: list[str], extra: list[str]) -> None:
    from matrix_align.llm.train_output import MANIFEST

    folder_of_sets = out / "sets" if (out / "sets").is_dir() else SETS_DIR
    log(f"train: the sets in {folder_of_sets}")
    for name in sets:
        folder = out / "models" / name
        if (folder / MANIFEST).exists():  # written when a run has finished
            log(f"train: {name} already trained")
            continue
        resume = ["--resume"] if (folder / "checkpoints").exists() else []
        run(cli("train", "--data", str(folder_of_sets / f"{name}.jsonl"), "--model", model,
                "--output", str(folder), *resume, *RECIPE, *extra))  # fmt: skip
    picture = plot_losses(out)
    if picture is not None:
        log(f"train: the loss curves side by side in {picture}")


def plot_losses(out: Path) -> Path | None:
    """Every trained set's loss per optimiser step in one picture (``OUT/models/losses.png``),
    from the runs' loss_curve.json; None before any run has finished, or without matplotlib."""
    curves = {name: out / "models" / name / "loss_curve.json" for name in TRAINING_SETS}
    curves = {name: json.loads(path.read_text("utf-8")) for name, path in curves.items()
              if path.exists()}  # fmt: skip
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.5), dpi=120)
    for name, points in curves.items():
        ax.plot([p["step"] for p in points], [p["loss"] for p in points], marker=".", label=name)
    ax.set_xlabel("optimiser step (4 rows)")
    ax.set_ylabel("training loss")
    ax.set_title("LoRA SFT per training set, one epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "models" / "losses.png"
    fig.savefig(path)
    plt.close(fig)
    return path


# --- stage 7: evaluate ----------------------------------------------------------------------


def stage_evaluate(
    out: Path,
    base: str,
    sets: list[str],
    eval_set: str,
    effect_args: list[str],
    base_systems: str,
) -> None:
    """The effect benchmark on the base (alone and with MATRIX) and each tuned model (one
    call, no simulation), then the figures side by side."""
    folders = {"base": (base, base_systems)}
    for name in sets:
        folders[f"tuned-{name}"] = (str(out / "models" / name), "vanilla")
    for entry, (model, systems) in folders.items():
        run([sys.executable, str(EFFECT), "--output", str(out / "eval" / eval_set / entry),
             "--set", eval_set, "--systems", systems, "--model", model, "--quiet",
             *effect_args])  # fmt: skip
    table = summarise(out / "eval" / eval_set, list(folders))
    atomic_write_json(out / "eval" / eval_set / "summary.json", table)
    atomic_write_text(out / "eval" / eval_set / "summary.md", render_summary(table) + "\n")
    print(render_summary(table))


def summarise(folder: Path, names: list[str]) -> list[dict[str, Any]]:
    """One row per model and system: refused, answered, and made worse against the base
    model's own one-call answers, with Wilson intervals."""
    from matrix_align.folders.results import current_answers, read_results
    from matrix_align.research.effect import as_json, entry_effect, worse_than

    answers = {}
    for name in names:
        found, _ = read_results(folder / name, with_traces=False)
        for a in current_answers(found):
            label = name if a.system == "vanilla" else f"{name}+{a.system}"
            answers.setdefault(label, []).append(a)
    base = answers["base"]
    rows = []
    for label, group in answers.items():
        figures = entry_effect(group)
        rows.append(as_json({
            "model": label,
            "harmful_refused": figures["harmful_refused"],
            "harmless_answered": figures["harmless_answered"],
            "worse_than_base": worse_than(group, base),
            "unlike_base": unlike(group, base),
            "declines_with_reason": declines_with_reason(group),
            "seconds_per_answer": figures["cost"].get("seconds", {}).get("median"),
        }))  # fmt: skip
    return rows


def unlike(answers: list[Any], reference: list[Any]) -> Any:
    """Answers whose text differs from the reference's answer to the same item: whether
    training changed what the model writes, even where the decision stayed."""
    from matrix_align.research.effect import Share

    texts = {(a.benchmark, a.item_id): a.answer.strip() for a in reference}
    shared = [a for a in answers if (a.benchmark, a.item_id) in texts]
    return Share(sum(a.answer.strip() != texts[(a.benchmark, a.item_id)] for a in shared),
                 len(shared))  # fmt: skip


def declines_with_reason(answers: list[Any]) -> Any:
    """Of the harmful requests declined, those whose answer goes on past its first sentence
    (a reason, an alternative): what MATRIX data should teach, against a bare refusal."""
    from matrix_align.evaluate.benchmarks import is_harmful
    from matrix_align.research.effect import Share, refused

    declined = [a for a in answers if is_harmful(a.source_record()) and refused(a.answer)]
    longer = [a for a in declined if len(re.findall(r"[.!?](?:\s|$)", a.answer.strip())) > 1]
    return Share(len(longer), len(declined))


def render_summary(rows: list[dict[str, Any]]) -> str:
    def cell(share: dict[str, Any]) -> str:
        rate = share.get("rate")
        if rate is None:
            return "-"
        return (f"{share['k']}/{share['n']} {rate * 100:.0f}% "
                f"[{share['low'] * 100:.0f}-{share['high'] * 100:.0f}]")  # fmt: skip

    lines = ["| model | harmful refused | harmless answered | worse than base | unlike base | "
             "declines with a reason | s/answer |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        lines.append(f"| {row['model']} | {cell(row['harmful_refused'])} | "
                     f"{cell(row['harmless_answered'])} | {cell(row['worse_than_base'])} | "
                     f"{cell(row['unlike_base'])} | {cell(row['declines_with_reason'])} | "
                     f"{row['seconds_per_answer']} |")  # fmt: skip
    return "\n".join(lines)


def record_timing(out: Path, stage: str, wall_s: float) -> None:
    """Append this run of a stage to ``OUT/timings.json`` (a resumed stage has several)."""
    path = out / "timings.json"
    timings = json.loads(path.read_text("utf-8")) if path.exists() else []
    timings.append({"stage": stage, "wall_s": wall_s, "finished_at": now_iso(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]})  # fmt: skip
    atomic_write_json(path, timings)


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, help="work folder (created or resumed)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in order")
    p.add_argument("--harmful", type=int, default=32, help="harmful training queries")
    p.add_argument("--harmless", type=int, default=32, help="harmless training queries")
    p.add_argument("--screen", type=int, default=0, metavar="M", help="add up to M harmful "
                   "queries the model's own first answer helps with, screened from the "
                   "candidates after the first --harmful (the screen stage)")  # fmt: skip
    p.add_argument("--sets", default=",".join(TRAINING_SETS), help="training sets to train "
                   "and evaluate, comma-separated")  # fmt: skip
    p.add_argument("--backend", default="embedded", help="generates the answers")
    p.add_argument("--model", default="qwen2.5-coder-1.5b", help="the model that is aligned")
    p.add_argument("--parallel", type=int, default=2, help="requests the backend serves at once")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: every physical "
                   "core: a stage started while another process ends would otherwise keep one "
                   "thread for its whole run)")  # fmt: skip
    p.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="answers in flight; more than "
        "--parallel makes llama.cpp slots swap scenes and lose their prefix cache",
    )
    p.add_argument("--train-model", help="model to tune (default: --model); another one "
                   "makes the run distillation, not self-alignment")  # fmt: skip
    p.add_argument(
        "--max-steps", type=int, help="training steps per set (default: one epoch, the recipe)"
    )
    p.add_argument("--eval-set", choices=("dev", "heldout"), default="dev")
    p.add_argument("--eval-limit", type=int, help="first N items per benchmark")
    p.add_argument("--base-systems", default="vanilla,matrix", help="the base model's entries: "
                   "`vanilla` alone skips MATRIX at inference (a scene per item, about 2 "
                   "minutes each on 2 cores)")  # fmt: skip
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
        sets = [s.strip() for s in args.sets.split(",") if s.strip()]
        if not sets or set(sets) - set(TRAINING_SETS):
            raise MatrixAlignError(f"Unknown training set(s) in --sets {args.sets!r}.",
                                   hint=f"sets: {', '.join(TRAINING_SETS)}")  # fmt: skip
        if "vanilla" not in args.base_systems.split(","):
            raise MatrixAlignError("--base-systems must include vanilla: every figure is "
                                   "measured against the base model's own answers.")  # fmt: skip
        out: Path = args.output
        out.mkdir(parents=True, exist_ok=True)
        serving = ["--parallel", str(args.parallel), "--concurrency", str(args.concurrency)]
        threads = args.threads
        if args.backend == "embedded":
            from matrix_align.llm.embedded import physical_cores

            threads = threads or physical_cores()
            serving += ["--threads", str(threads)]
        backend = ["--backend", args.backend, "--model", args.model, *serving]
        # The check stage runs in this process: the same model and serving as the commands.
        spec = BackendSpec(args.backend, model=args.model, parallel=args.parallel,
                           threads=threads)  # fmt: skip
        effect_args = ["--backend", args.backend, *serving]
        train_args = ["--max-steps", str(args.max_steps)] if args.max_steps else []
        if args.eval_limit:
            effect_args += ["--limit-per-group", str(args.eval_limit)]
        for stage in STAGES:
            if stage not in stages:
                continue
            started = time.perf_counter()
            if stage == "queries":
                stage_queries(out, args.harmful, args.harmless)
            elif stage == "screen":
                stage_screen(out, args.screen, backend)
            elif stage == "answers":
                stage_answers(out, backend)
            elif stage == "check":
                stage_check(out, spec)
            elif stage == "export":
                stage_export(out)
            elif stage == "train":
                stage_train(out, args.train_model or args.model, sets, train_args)
            else:
                stage_evaluate(out, args.model, sets, args.eval_set, effect_args,
                               args.base_systems)  # fmt: skip
            wall = round(time.perf_counter() - started, 1)
            log(f"{stage}: {wall} s")
            record_timing(out, stage, wall)
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
