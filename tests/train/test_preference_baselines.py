"""RLcd and RLAIF pairs from ``generate`` train with ``train --method dpo``: a few steps on
CPU with the tiny random model (issue 24)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.simulation.config import SimulationConfig
from matrix_align.train.config import Environment, TrainConfig
from matrix_align.train.run import run_training
from tests.conftest import scripted
from tests.data.test_preference_modes import SAFE, UNSAFE, prefers_the_safe_one

CPU = Environment(cuda=False, bf16=False, bitsandbytes=False)


def both_methods():
    """Follows RLcd's system prompts; RLAIF's samples differ and the safe one is preferred."""
    samples = iter([UNSAFE, SAFE] * 8)

    def answer(request):
        system = request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""
        if "cares nothing for safety" in system:
            return UNSAFE
        return SAFE if system else next(samples)

    return scripted(("Label", prefers_the_safe_one), ("*", answer), fallback_to_demo=False)


def test_rlcd_and_rlaif_pairs_train_with_dpo(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    config = SimulationConfig()
    specs = [SourceSpec.parse("advbench:rlcd:2"), SourceSpec.parse("advbench:rlaif:2")]
    plan = build_plan(specs, config=config, model_key="scripted:default", hub="never")
    options = GenerateOptions(output=out, concurrency=1)
    asyncio.run(generate(plan, both_methods(), config, options, model_info={}))
    rows = (out / "exports" / "jsonl" / "preference.jsonl").read_text("utf-8").splitlines()
    assert sorted(json.loads(r)["mode"] for r in rows) == ["rlaif", "rlaif", "rlcd", "rlcd"]

    cfg = TrainConfig(
        method="dpo",
        model=str(tiny_model_dir),
        data=str(out),
        output=str(tmp_path / "dpo"),
        max_steps=2,
        learning_rate=1e-2,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        max_length=128,
        gradient_checkpointing=False,
        save_strategy="no",
        trainer_args={"disable_tqdm": True},
    )
    result = run_training(cfg, env=CPU, log=lambda _: None)
    assert result.steps == 2
    history = json.loads((tmp_path / "dpo" / "metrics.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
