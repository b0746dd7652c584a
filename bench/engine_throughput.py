"""``generate`` on a real serving engine: default flags against one scene at a time, and
against the engine's own saturated throughput.

Run it where a GPU engine serves a model over the OpenAI API, e.g.

    vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000 --enable-prefix-caching
    python bench/engine_throughput.py --base-url http://localhost:8000/v1 \\
        --model Qwen/Qwen2.5-7B-Instruct --queries 64 --json runs/engine.json

Three measurements, one after the other on the same engine and model:

1. ``saturated``: ``--saturate`` plain requests at once, each generating ``--gen-tokens``
   tokens (vLLM's ``ignore_eos``, so every request runs to its length): the engine's
   generated tokens per second when it has all the work it can batch;
2. ``one scene at a time``: ``generate`` with concurrency 1 on the first queries;
3. ``defaults``: ``generate`` as a user runs it with no flags (the openai backend's default
   in-flight limit and scenes in flight) on all ``--queries`` queries.

It prints scenes per minute, generated tokens per second, the speed-up of 3 over 2 (the
scene-cost goal is at least 20x on a GPU engine) and 3's generated tokens per second as a
share of 1's (goal: at least 0.8). Against the loopback fake server (``--fake``) it runs in
seconds on a CPU, as a check of the script itself; its figures mean nothing for a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from generate_throughput import run_batch  # noqa: E402

from matrix_align.llm.registry import default_parallel, default_scenes_in_flight  # noqa: E402
from matrix_align.llm.spec import BackendSpec  # noqa: E402
from matrix_align.simulation.config import SimulationConfig  # noqa: E402


async def saturated(base_url: str, model: str, requests: int, tokens: int) -> dict:
    """Generated tokens per second with ``requests`` plain completions in flight at once."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "none"))
    prompt = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]

    async def one(i: int) -> int:
        reply = await client.chat.completions.create(
            model=model, messages=prompt, max_tokens=tokens, temperature=1.0, seed=i,
            extra_body={"ignore_eos": True, "min_tokens": tokens},
        )  # fmt: skip
        return reply.usage.completion_tokens if reply.usage else 0

    started = time.perf_counter()
    generated = sum(await asyncio.gather(*(one(i) for i in range(requests))))
    wall = time.perf_counter() - started
    await client.close()
    return {"row": "saturated", "wall_s": wall, "generated": generated, "tok_s": generated / wall}


async def scenes(base_url: str, model: str, n: int, concurrency: int, label: str) -> dict:
    spec = BackendSpec("openai", model=model, base_url=base_url)  # the command's defaults
    async with spec.open() as chat:
        wall, done, calls, generated = await run_batch(chat, SimulationConfig(), n, concurrency, 0)
    return {
        "row": label,
        "scenes": done,
        "wall_s": wall,
        "calls": calls,
        "generated": generated,
        "scenes_per_min": 60 * done / wall,
        "tok_s": generated / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="the engine's OpenAI-compatible endpoint")
    parser.add_argument("--model", help="the model name the engine serves")
    parser.add_argument("--fake", action="store_true", help="loopback fake server instead")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--single", type=int, default=4, help="scenes run one at a time")
    parser.add_argument("--saturate", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.fake and not (args.base_url and args.model):
        parser.error("give --base-url and --model (or --fake)")

    async def run(base_url: str, model: str) -> list[dict]:
        in_flight = default_scenes_in_flight(default_parallel("openai"))
        return [
            await saturated(base_url, model, args.saturate, args.gen_tokens),
            await scenes(base_url, model, args.single, 1, "one scene at a time"),
            await scenes(base_url, model, args.queries, in_flight, f"defaults ({in_flight})"),
        ]

    print(f"# {platform.node()}, {time.strftime('%Y-%m-%d %H:%M')}, 5 roles x 5 steps")
    if args.fake:
        from generate_throughput import scripted_responder

        from matrix_align.testing import FakeOpenAIServer

        with FakeOpenAIServer(responder=scripted_responder(True), owned_by="vllm") as server:
            rows = asyncio.run(run(server.base_url, server.models[0]))
    else:
        rows = asyncio.run(run(args.base_url, args.model))
    for r in rows:
        print(f"{r['row']:24} wall {r['wall_s']:8.1f} s  {r['tok_s']:9.1f} generated tok/s"
              + (f"  {r['scenes_per_min']:8.1f} scenes/min" if "scenes" in r else ""))  # fmt: skip
    top, one, defaults = rows
    speedup = defaults["scenes_per_min"] / one["scenes_per_min"]
    share = defaults["tok_s"] / top["tok_s"]
    print(f"defaults vs one scene at a time: {speedup:.1f}x; defaults' generated tok/s = "
          f"{share:.2f} of saturated")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
