"""Scene throughput of ``generate``: the naive sequential way vs many scenes in flight.

Prints, side by side in one run, scenes per minute (and calls per second) for:

1. ``sequential``: one model call at a time, one scene at a time, the way the authors' code
   runs (a global lock around every call);
2. ``concurrency 1``: one scene at a time, the reactions of a round in parallel;
3. ``concurrency N``: N scenes in flight (the default of ``generate``),

against (a) a loopback OpenAI-compatible server that models a continuous-batching engine
(``FakeOpenAIServer``: per-request latency ``(base + per_token * tokens) * (1 + alpha *
(in_flight - 1))``, i.e. growing slowly with the number in flight) and (b) the embedded model
(llama.cpp in-process, ``--parallel`` slots). It runs the real batch runner (store, fsync,
summary) into temporary folders. Not a test: it prints figures and the speed-up ratios.

    python bench/generate_throughput.py                  # both targets
    python bench/generate_throughput.py --skip-embedded  # the fake server only (~1 min)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the shipped samples are enough here

from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate  # noqa: E402
from matrix_align.llm.base import ChatModel  # noqa: E402
from matrix_align.llm.spec import BackendSpec  # noqa: E402
from matrix_align.llm.wrappers import ConcurrencyLimitedModel  # noqa: E402
from matrix_align.simulation.config import SimulationConfig  # noqa: E402


@dataclass
class Row:
    target: str
    mode: str
    scenes: int
    wall_s: float
    calls: int
    completion_tokens: int
    load: float = 0.0  # 1-minute load average when the row finished (shared machines)

    @property
    def scenes_per_min(self) -> float:
        return 60.0 * self.scenes / self.wall_s if self.wall_s else 0.0

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s if self.wall_s else 0.0


async def run_batch(
    model: ChatModel, config: SimulationConfig, scenes: int, concurrency: int, offset: int
) -> tuple[float, int, int, int]:
    """Generate ``scenes`` MATRIX samples; returns (wall s, scenes done, calls, tokens).
    ``offset`` picks different queries per row, so no row benefits from another's cache."""
    plan = build_plan(
        [SourceSpec.parse(f"advbench:matrix:{offset + scenes}")],
        config=config,
        model_key="bench",
        hub="never",
    )
    plan.items = plan.items[offset : offset + scenes]
    with tempfile.TemporaryDirectory() as folder:
        options = GenerateOptions(output=Path(folder), concurrency=concurrency, export=False)
        started = time.perf_counter()
        summary = await generate(plan, model, config, options, model_info={"key": "bench"})
        wall = time.perf_counter() - started
    run = summary["this_run"]
    return wall, run["completed"], run["calls"], run["completion_tokens"]


async def measure(
    target: str,
    spec: BackendSpec,
    config: SimulationConfig,
    *,
    seq_scenes: int,
    scenes: int,
    concurrency: int,
) -> list[Row]:
    rows: list[Row] = []
    offset = 0
    for mode, n, conc, sequential in (
        ("sequential", seq_scenes, 1, True),
        ("concurrency 1", seq_scenes, 1, False),
        (f"concurrency {concurrency}", scenes, concurrency, False),
    ):
        async with spec.open() as opened:  # a fresh model per row, closed after it
            model = ConcurrencyLimitedModel(opened, 1) if sequential else opened
            wall, done, calls, tokens = await run_batch(model, config, n, conc, offset)
        offset += n
        load = os.getloadavg()[0]
        rows.append(Row(target, mode, done, wall, calls, tokens, load))
        print(f"  {target:14} {mode:16} {done:3d} scenes in {wall:7.1f} s (load {load:.1f})",
              flush=True)  # fmt: skip
    return rows


def scripted_responder(everyone_notices: bool = False) -> Any:
    """The fake server answers like the scripted demo (plausible roles, plans, one receiver
    per action, or all of them, critiques), so scenes have the shape of real ones."""
    from matrix_align.llm.scripted import ScriptedModel

    script = ScriptedModel.demo(everyone_notices=everyone_notices)

    def respond(body: dict[str, Any], schema: dict[str, Any] | None) -> str:
        reply = asyncio.run(
            script.complete(body["messages"], max_tokens=body.get("max_tokens") or 256,
                            temperature=0.0, schema=schema)
        )  # fmt: skip
        script.requests.clear()
        return reply.text

    return respond


def fake_server_rows(args: argparse.Namespace) -> list[Row]:
    from matrix_align.testing import FakeOpenAIServer

    config = SimulationConfig()  # the paper's defaults: 5 roles, 5 steps
    with FakeOpenAIServer(
        responder=scripted_responder(),
        owned_by="vllm",
        base_latency_s=args.base_latency,
        per_token_s=args.per_token,
        alpha=args.alpha,
    ) as server:
        spec = BackendSpec("openai", model=server.models[0], base_url=server.base_url,
                           parallel=256)  # fmt: skip
        return asyncio.run(
            measure("fake server", spec, config, seq_scenes=args.fake_seq_scenes,
                    scenes=args.fake_scenes, concurrency=args.fake_concurrency)
        )  # fmt: skip


def default_flag_rows(args: argparse.Namespace) -> list[Row]:
    """``generate`` with no flags against a batching server (openai backend: its default
    in-flight limit and scenes in flight), against one scene at a time on the same backend,
    on the same number of queries, every action noticed by every role."""
    from matrix_align.llm.registry import default_parallel, default_scenes_in_flight
    from matrix_align.testing import FakeOpenAIServer

    config = SimulationConfig()
    with FakeOpenAIServer(
        responder=scripted_responder(everyone_notices=True),
        owned_by="vllm",
        base_latency_s=args.base_latency,
        per_token_s=args.per_token,
        alpha=args.alpha,
    ) as server:
        # As the command builds it: no --parallel given.
        spec = BackendSpec("openai", model=server.models[0], base_url=server.base_url)
        rows: list[Row] = []
        in_flight = default_scenes_in_flight(default_parallel("openai"))
        n = args.defaults_scenes
        for offset, (mode, conc) in enumerate(
            (("one scene at a time", 1), (f"defaults: {in_flight} scenes", in_flight))
        ):

            async def batch(conc: int = conc, offset: int = offset) -> tuple[float, int, int, int]:
                async with spec.open() as model:  # opened in the loop that uses it
                    return await run_batch(model, config, n, conc, offset * n)

            wall, done, calls, tokens = asyncio.run(batch())
            load = os.getloadavg()[0]
            rows.append(Row("fake, defaults", mode, done, wall, calls, tokens, load))
            print(f"  fake, defaults {mode:22} {done:3d} scenes in {wall:7.1f} s", flush=True)
        print(f"  generate's defaults: {rows[1].scenes_per_min / rows[0].scenes_per_min:.1f}x "
              "one scene at a time")  # fmt: skip
        return rows


def embedded_rows(args: argparse.Namespace) -> list[Row]:
    config = SimulationConfig(
        n_roles=args.roles, n_steps=args.steps, max_tokens=args.max_tokens,
        final_max_tokens=args.max_tokens,
    )  # fmt: skip
    spec = BackendSpec("embedded", parallel=args.parallel)

    async def warm() -> None:  # load the model outside the timings (the process keeps it)
        async with spec.open() as model:
            await model.complete([{"role": "user", "content": "hi"}], max_tokens=4,
                                 temperature=0.0)  # fmt: skip

    asyncio.run(warm())
    return asyncio.run(
        measure("embedded", spec, config, seq_scenes=args.emb_seq_scenes,
                scenes=args.emb_scenes, concurrency=args.emb_concurrency)
    )  # fmt: skip


def print_table(rows: list[Row]) -> None:
    print()
    header = (
        f"{'target':14} {'mode':16} {'scenes':>6} {'wall s':>8} {'scenes/min':>10} "
        f"{'calls/s':>8} {'calls/scene':>11} {'x seq':>6} {'x conc1':>7} {'load':>5}"
    )
    print(header)
    for target in dict.fromkeys(r.target for r in rows):
        group = [r for r in rows if r.target == target]
        seq, one = group[0].scenes_per_min, group[1].scenes_per_min
        for r in group:
            per_scene = r.calls / r.scenes if r.scenes else 0.0
            print(
                f"{r.target:14} {r.mode:16} {r.scenes:6d} {r.wall_s:8.1f} "
                f"{r.scenes_per_min:10.2f} {r.calls_per_s:8.1f} {per_scene:11.1f} "
                f"{r.scenes_per_min / seq if seq else 0:6.2f} "
                f"{r.scenes_per_min / one if one else 0:7.2f} {r.load:5.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-fake", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-defaults", action="store_true")
    parser.add_argument("--defaults-scenes", type=int, default=12, help="queries, defaults rows")
    parser.add_argument("--fake-seq-scenes", type=int, default=3)
    parser.add_argument("--fake-scenes", type=int, default=32)
    parser.add_argument("--fake-concurrency", type=int, default=32)
    parser.add_argument("--base-latency", type=float, default=0.05, help="fake server, s")
    parser.add_argument("--per-token", type=float, default=0.002, help="fake server, s/token")
    parser.add_argument("--alpha", type=float, default=0.02, help="fake server slowdown/req")
    parser.add_argument("--emb-seq-scenes", type=int, default=2)
    parser.add_argument("--emb-scenes", type=int, default=6)
    parser.add_argument("--emb-concurrency", type=int, default=6)
    parser.add_argument("--parallel", type=int, default=4, help="embedded llama.cpp slots")
    parser.add_argument("--roles", type=int, default=2, help="embedded scenes (CPU: small)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
          f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    rows: list[Row] = []
    if not args.skip_fake:
        print(f"fake server: default SimulationConfig (5 roles, 5 steps); latency "
              f"({args.base_latency} + {args.per_token} x tokens) x (1 + {args.alpha} x "
              f"(in_flight - 1))")  # fmt: skip
        rows += fake_server_rows(args)
    if not args.skip_defaults:
        print(f"fake server, generate's default flags, every action noticed by all, "
              f"{args.defaults_scenes} queries")  # fmt: skip
        rows += default_flag_rows(args)
    if not args.skip_embedded:
        print(f"embedded: {args.roles} roles, {args.steps} steps, max {args.max_tokens} tokens, "
              f"{args.parallel} slots")  # fmt: skip
        rows += embedded_rows(args)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ | {"scenes_per_min": r.scenes_per_min}
                                         for r in rows], indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
