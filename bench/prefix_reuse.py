"""Prefix reuse and cost per scene: how much of each prompt a prefix cache can skip.

For every model call of a scene, the *reused* part of its prompt is the longest prefix it
shares with any prompt sent earlier in the same scene: that is the part a serving engine's
prefix cache (vLLM, SGLang, llama.cpp slots) can skip when it still holds the earlier
request. The figure printed is ``sum(reused) / sum(prompt length)`` over all calls of all
scenes, measured three ways:

- ``chars``: over the prompts rendered as text (role header + content per message), a
  tokenizer-free proxy;
- ``tokens``: over the token ids of the prompts rendered with the embedded model's own chat
  template and tokenizer (Qwen2.5, read from the GGUF by transformers; skipped with a note
  when transformers/gguf are missing);
- ``server cached``: the prompt tokens the server itself reported as cache hits
  (``cached_tokens``), which also depends on slot assignment and eviction: a lower bound.

It also prints calls and tokens per scene, next to the ~100-147 calls per query measured on
the authors' code (docs/method.md). Scenes come from ``--samples`` files (a generate run's
samples.jsonl, e.g. on a real model), from the scripted backend at the paper's default
sizes (real prompts, canned outputs), and optionally from the embedded model.

    python bench/prefix_reuse.py --scripted 8 --embedded 3 --roles 2 --steps 2
    python bench/prefix_reuse.py --samples runs/demo/samples.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matrix_align.simulation.config import SimulationConfig  # noqa: E402
from matrix_align.simulation.trace import SceneTrace  # noqa: E402

AUTHORS_CALLS_PER_QUERY = "100-147"


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common prefix; binary search over slice equality (C speed)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def reuse(prompts: list[Sequence[Any]]) -> tuple[int, int]:
    """(reused, total) for one scene's prompts in call order."""
    reused = total = 0
    for i, prompt in enumerate(prompts):
        total += len(prompt)
        if i:
            reused += max(common_prefix(prompt, earlier) for earlier in prompts[:i])
    return reused, total


def as_text(messages: list[dict[str, str]]) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)


def load_tokenizer() -> Any | None:
    try:
        from transformers import AutoTokenizer

        from matrix_align.llm.model_files import ensure_default_model

        path = Path(ensure_default_model())
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # optional: the char proxy still works
        print(f"note: no tokenizer ({type(exc).__name__}: {str(exc)[:120]}); chars only")
        return None


def token_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids)


def by_stage(traces: list[SceneTrace]) -> dict[str, tuple[int, float]]:
    """Char-proxy reuse per call stage (calls, fraction): where the cache misses are."""
    totals: dict[str, list[int]] = {}
    for trace in traces:
        prompts = [as_text(c.messages) for c in trace.calls]
        for i, call in enumerate(trace.calls):
            reused = max((common_prefix(prompts[i], p) for p in prompts[:i]), default=0)
            entry = totals.setdefault(call.stage, [0, 0, 0])
            entry[0] += 1
            entry[1] += reused
            entry[2] += len(prompts[i])
    return {k: (n, r / t if t else 0.0) for k, (n, r, t) in totals.items()}


def analyse(label: str, traces: list[SceneTrace], tokenizer: Any | None) -> dict[str, Any]:
    char_reused = char_total = tok_reused = tok_total = 0
    cached = prompt_tokens = 0
    calls, p_tokens, c_tokens = [], [], []
    for trace in traces:
        r, t = reuse([as_text(c.messages) for c in trace.calls])
        char_reused, char_total = char_reused + r, char_total + t
        if tokenizer is not None:
            r, t = reuse([token_ids(tokenizer, c.messages) for c in trace.calls])
            tok_reused, tok_total = tok_reused + r, tok_total + t
        cached += sum(c.cached_tokens for c in trace.calls)
        prompt_tokens += sum(c.prompt_tokens for c in trace.calls)
        calls.append(len(trace.calls))
        p_tokens.append(sum(c.prompt_tokens for c in trace.calls))
        c_tokens.append(sum(c.completion_tokens for c in trace.calls))
    return {
        "label": label,
        "scenes": len(traces),
        "reuse_chars": char_reused / char_total if char_total else 0.0,
        "reuse_tokens": tok_reused / tok_total if tok_total else None,
        "server_cached": cached / prompt_tokens if prompt_tokens else 0.0,
        "calls_per_scene": statistics.mean(calls) if calls else 0.0,
        "calls_range": (min(calls), max(calls)) if calls else (0, 0),
        "prompt_tokens_per_scene": statistics.mean(p_tokens) if p_tokens else 0.0,
        "completion_tokens_per_scene": statistics.mean(c_tokens) if c_tokens else 0.0,
        "by_stage": by_stage(traces),
    }


def traces_from_samples(path: Path) -> list[SceneTrace]:
    traces = []
    for line in path.read_text("utf-8").splitlines():
        record = json.loads(line)
        if record.get("mode") == "matrix" and record.get("trace"):
            traces.append(SceneTrace.model_validate_json(record["trace"]))
    return traces


async def run_scenes(model: Any, config: SimulationConfig, n: int, concurrency: int):  # noqa: ANN201
    from matrix_align.data.sources import load_source
    from matrix_align.simulation.scene import run_scene

    queries = [r.prompt for r in load_source("advbench", hub="never", limit=n).records]
    gate = asyncio.Semaphore(concurrency)

    async def one(query: str) -> SceneTrace:
        async with gate:
            return await run_scene(query, model, config)

    return await asyncio.gather(*(one(q) for q in queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, action="append", default=[])
    parser.add_argument("--scripted", type=int, default=8, help="scripted scenes (0: none)")
    parser.add_argument("--embedded", type=int, default=0, help="embedded-model scenes")
    parser.add_argument("--roles", type=int, default=2, help="embedded scenes' roles")
    parser.add_argument("--steps", type=int, default=2, help="embedded scenes' steps")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--chars-only", action="store_true", help="skip the tokenizer")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    tokenizer = None if args.chars_only else load_tokenizer()
    results = []
    for path in args.samples:
        results.append(analyse(f"samples {path}", traces_from_samples(path), tokenizer))
    if args.scripted:
        from matrix_align.llm.scripted import ScriptedModel

        config = SimulationConfig()
        traces = asyncio.run(run_scenes(ScriptedModel.demo(), config, args.scripted, 8))
        results.append(analyse("scripted, 5 roles x 5 steps", traces, tokenizer))
    if args.embedded:
        from matrix_align.llm.spec import BackendSpec

        config = SimulationConfig(
            n_roles=args.roles, n_steps=args.steps, max_tokens=args.max_tokens,
            final_max_tokens=args.max_tokens,
        )  # fmt: skip

        async def embedded() -> list[SceneTrace]:
            async with BackendSpec("embedded", parallel=args.parallel).open() as model:
                return await run_scenes(model, config, args.embedded, args.parallel)

        started = time.perf_counter()
        traces = asyncio.run(embedded())
        label = (f"embedded, {args.roles} roles x {args.steps} steps "
                 f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
        results.append(analyse(label, traces, tokenizer))

    print()
    print(
        f"{'scenes from':44} {'n':>3} {'reuse chars':>11} {'reuse tokens':>12} "
        f"{'server cached':>13} {'calls/scene':>11} {'prompt tok':>10} {'compl tok':>9}"
    )
    for r in results:
        tokens = f"{r['reuse_tokens']:.3f}" if r["reuse_tokens"] is not None else "-"
        print(
            f"{r['label'][:44]:44} {r['scenes']:3d} {r['reuse_chars']:11.3f} {tokens:>12} "
            f"{r['server_cached']:13.3f} {r['calls_per_scene']:11.1f} "
            f"{r['prompt_tokens_per_scene']:10.0f} {r['completion_tokens_per_scene']:9.0f}"
        )
    for r in results:
        stages = ", ".join(f"{stage} {n}x {frac:.2f}" for stage, (n, frac) in r["by_stage"].items())
        print(f"  reuse by stage ({r['label'][:30]}, chars): {stages}")
    print(f"\nauthors' code: {AUTHORS_CALLS_PER_QUERY} calls per query, strictly sequential, "
          "no prefix-stable prompts (docs/method.md).")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
