"""Does speculative decoding make the embedded model's scene calls faster on this machine?

Replays stored scene calls (the ``calls`` of the traces that ``generate`` or ``simulate``
wrote) through llama.cpp three ways, side by side in one run, on the same cores:

- ``none``: the embedded default, one token per step;
- ``draft``: a smaller model of the same tokenizer family drafts up to
  ``SPECULATIVE_DRAFT_TOKENS`` tokens that the target checks in one batch (the bundled 0.5B
  for the 1.5B);
- ``ngram``: drafts taken from token sequences already in the context (no second model),
  which suits scene calls that quote names and events back.

All three servers are loaded first; then each block of ``--parallel`` calls runs under every
mode in turn, the order rotating from block to block, so a noisy neighbour costs each mode
alike. Calls replay at temperature 0, so each mode should write the same text; the share of
identical outputs is printed beside the speed. Structured calls ask for a JSON object (the
stored traces do not keep each call's schema), so the grammar's cost is in every mode.

    python bench/speculative.py runs/self-align/answers/matrix/samples.jsonl --calls 24
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.llm import embedded
from matrix_align.llm.base import chat_request
from matrix_align.llm.model_files import bundled_model, ensure_bundled_model

MODES = ("none", "draft", "ngram")


def stored_calls(paths: list[Path], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` calls, taken scene by scene from samples.jsonl or trace .json files."""
    calls: list[dict[str, Any]] = []
    for path in paths:
        lines = path.read_text("utf-8").splitlines() if path.suffix == ".jsonl" else [None]
        for line in lines:
            trace = json.loads(path.read_text("utf-8")) if line is None else json.loads(line)
            trace = trace.get("trace", trace)
            if isinstance(trace, str):
                trace = json.loads(trace)
            calls.extend(call for call in trace.get("calls", []) if call.get("messages"))
            if len(calls) >= limit:
                return calls[:limit]
    return calls


def request_for(call: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    request = chat_request(call["messages"], max_tokens, 0.0, 0)
    if call.get("parsed") is not None:
        request["response_format"] = {"type": "json_object"}
    return request


def start(mode: str, target: Path, draft: Path, parallel: int, threads: int) -> Any:
    speculative = {"none": None, "draft": str(draft), "ngram": "ngram"}[mode]
    key = embedded._ServerKey(str(target), parallel, 4096, threads, None, speculative)
    return embedded._start_server(key).server


def run_block(server: Any, requests: list[dict[str, Any]]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        responses = list(pool.map(server.handle_chat_completions, requests))
    return time.perf_counter() - started, responses


def measure(args: argparse.Namespace) -> dict[str, Any]:
    calls = stored_calls(args.traces, args.calls)
    if not calls:
        raise MatrixAlignError(f"no stored calls with messages in {args.traces}")
    requests = [request_for(call, args.max_tokens) for call in calls]
    target = ensure_bundled_model(args.model)
    draft = ensure_bundled_model(args.draft)
    servers = {mode: start(mode, target, draft, args.parallel, args.threads) for mode in args.modes}
    walls = {mode: 0.0 for mode in args.modes}
    texts: dict[str, list[str]] = {mode: [] for mode in args.modes}
    tokens = {mode: 0 for mode in args.modes}
    drafted = {mode: [0, 0] for mode in args.modes}
    blocks = [requests[i : i + args.parallel] for i in range(0, len(requests), args.parallel)]
    for number, block in enumerate(blocks):
        shift = number % len(args.modes)
        for mode in args.modes[shift:] + args.modes[:shift]:
            wall, responses = run_block(servers[mode], block)
            walls[mode] += wall
            for response in responses:
                if "error" in response:
                    raise MatrixAlignError(f"{mode}: llama.cpp answered {response['error']}")
                texts[mode].append(response["choices"][0]["message"]["content"] or "")
                tokens[mode] += int(response["usage"]["completion_tokens"])
                timings = response.get("timings") or {}
                drafted[mode][0] += int(timings.get("draft_n") or 0)
                drafted[mode][1] += int(timings.get("draft_n_accepted") or 0)
        print(
            f"block {number + 1}/{len(blocks)}: "
            + ", ".join(f"{mode} {walls[mode]:.0f} s" for mode in args.modes),
            file=sys.stderr,
            flush=True,
        )
    reference = texts[args.modes[0]]
    figures = {}
    for mode in args.modes:
        same = sum(a == b for a, b in zip(texts[mode], reference, strict=True))
        figures[mode] = {
            "wall_s": round(walls[mode], 1),
            "generated_tokens": tokens[mode],
            "tokens_per_s": round(tokens[mode] / walls[mode], 2),
            "speedup_vs_first": round(walls[args.modes[0]] / walls[mode], 3),
            "drafted": drafted[mode][0],
            "accepted": drafted[mode][1],
            "acceptance": round(drafted[mode][1] / drafted[mode][0], 3)
            if drafted[mode][0]
            else None,
            "same_text_as_first": f"{same}/{len(reference)}",
        }
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "load_average": list(os.getloadavg())},
        "model": args.model, "draft": args.draft, "threads": args.threads,
        "parallel": args.parallel, "calls": len(calls),
        "median_output_tokens": statistics.median(c.get("completion_tokens", 0) for c in calls),
        "draft_tokens": embedded.SPECULATIVE_DRAFT_TOKENS,
        "modes": figures,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("traces", type=Path, nargs="+", help="samples.jsonl or trace .json files")
    p.add_argument("--calls", type=int, default=24, help="stored calls to replay")
    p.add_argument("--modes", default=",".join(MODES), help="first one is the reference")
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--draft", default="qwen2.5-coder-0.5b")
    p.add_argument("--parallel", type=int, default=2, help="slots, and calls in flight")
    p.add_argument("--threads", type=int, default=embedded.physical_cores())
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = p.parse_args(argv)
    args.modes = [mode.strip() for mode in args.modes.split(",")]
    unknown = [m for m in args.modes if m not in MODES] + [
        n for n in (args.model, args.draft) if bundled_model(n) is None
    ]
    if unknown:
        p.error(f"unknown mode or model: {', '.join(unknown)}")
    try:
        figures = measure(args)
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
