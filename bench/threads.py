"""llama.cpp threads on a machine whose load changes during a run.

The embedded default measures the cores left free by other work once, when the model is
made (``embedded.default_threads``): a long run started beside a busy process keeps one
thread on 2 cores after that process ends. llama.cpp cannot change a running server's
threads, so the alternative measured here is to keep every physical core and let the
threads sleep, not spin, while they wait for each other (``poll`` 0), so a core taken by
other work stalls them less.

Each setting replays the same stored scene calls (``bench/speculative.py`` reads them) in
two halves: the first beside a busy process (a Python loop on one core), the second after it
has ended, as when a neighbour's job finishes partway through a run. Settings take turns,
twice, in mirrored order (A B C C B A), so drift in the machine costs each alike.

    python bench/threads.py runs/self-align/answers/matrix/samples.jsonl --calls 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from speculative import request_for, run_block, stored_calls  # noqa: E402

from matrix_align.errors import MatrixAlignError  # noqa: E402
from matrix_align.llm import embedded  # noqa: E402
from matrix_align.llm.model_files import ensure_bundled_model  # noqa: E402

BUSY_LOOP = "while True: pass"


def settings(cores: int) -> dict[str, tuple[int, int | None]]:
    """name -> (threads, poll): today's default beside one busy core, all cores spinning
    (llama.cpp's own default), all cores sleeping when they wait."""
    return {
        "measured-at-start": (max(1, cores - 1), None),
        "all-cores": (cores, None),
        "all-cores-poll-0": (cores, 0),
    }


def replay(server: Any, requests: list[dict[str, Any]], parallel: int) -> float:
    wall = 0.0
    for start in range(0, len(requests), parallel):
        seconds, responses = run_block(server, requests[start : start + parallel])
        if any("error" in r for r in responses):
            raise MatrixAlignError(f"llama.cpp answered {responses}")
        wall += seconds
    return wall


def measure(args: argparse.Namespace) -> dict[str, Any]:
    calls = stored_calls(args.traces, args.calls)
    if len(calls) < 2:
        raise MatrixAlignError(f"fewer than 2 stored calls in {args.traces}")
    requests = [request_for(call, args.max_tokens) for call in calls]
    half = len(requests) // 2
    target = str(ensure_bundled_model(args.model))
    cores = embedded.physical_cores()
    servers = {
        name: embedded._start_server(
            embedded._ServerKey(target, args.parallel, 4096, threads, poll=poll)
        ).server
        for name, (threads, poll) in settings(cores).items()
    }
    names = list(servers)
    walls: dict[str, dict[str, list[float]]] = {n: {"busy": [], "quiet": []} for n in names}
    for name in names + names[::-1]:
        busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        try:
            walls[name]["busy"].append(replay(servers[name], requests[:half], args.parallel))
        finally:
            busy.kill()
            busy.wait()
        walls[name]["quiet"].append(replay(servers[name], requests[half:], args.parallel))
        print(f"{name}: busy {walls[name]['busy'][-1]:.1f} s, quiet "
              f"{walls[name]['quiet'][-1]:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    reference = names[0]
    figures = {}
    for name in names:
        busy, quiet = (statistics.median(walls[name][k]) for k in ("busy", "quiet"))
        ref = sum(statistics.median(walls[reference][k]) for k in ("busy", "quiet"))
        figures[name] = {
            "threads": settings(cores)[name][0],
            "poll": settings(cores)[name][1],
            "busy_half_s": round(busy, 1),
            "quiet_half_s": round(quiet, 1),
            "total_s": round(busy + quiet, 1),
            "speedup_vs_measured": round(ref / (busy + quiet), 3),
            "runs": walls[name],
        }
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cores": os.cpu_count(),
            "physical_cores": cores,
            "load_average": list(os.getloadavg()),
        },  # fmt: skip
        "model": args.model,
        "calls": len(calls),
        "max_tokens": args.max_tokens,
        "parallel": args.parallel,
        "settings": figures,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("traces", type=Path, nargs="+", help="samples.jsonl or trace .json files")
    p.add_argument("--calls", type=int, default=8, help="stored calls to replay, split in two")
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--parallel", type=int, default=2, help="slots, and calls in flight")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = p.parse_args(argv)
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
