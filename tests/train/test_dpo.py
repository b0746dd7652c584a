"""DPO on MATRIX preference pairs (chosen = MATRIX answer, rejected = initial answer): a few
steps on CPU with a LoRA adapter, the reference being the base with the adapter switched off."""

from __future__ import annotations

import json
import math
from pathlib import Path

from matrix_align.train.config import Environment, TrainConfig
from matrix_align.train.run import run_training

CPU = Environment(cuda=False, bf16=False, bitsandbytes=False)


def test_dpo_runs_a_few_steps(generate_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        method="dpo",
        model=str(tiny_model_dir),
        data=str(generate_dir),
        output=str(tmp_path / "dpo"),
        max_steps=2,
        learning_rate=1e-2,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        max_length=256,
        gradient_checkpointing=False,
        save_strategy="no",
        trainer_args={"disable_tqdm": True},
    )
    messages: list[str] = []
    result = run_training(cfg, env=CPU, log=messages.append)
    assert any("preference.jsonl" in m for m in messages)
    assert result.steps == 2
    assert (result.weights_dir / "adapter_config.json").exists()
    history = json.loads((tmp_path / "dpo" / "metrics.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
    # DPO's loss starts at log(2): policy == reference before the first update.
    assert abs(losses[0] - math.log(2)) < 1e-3
    assert any("rewards/chosen" in e for e in history)
    assert "DPO beta | 0.1" in (tmp_path / "dpo" / "README.md").read_text()
