"""Several processes (DDP over gloo on CPU, launched by torchrun as `accelerate launch` would):
each trains its shard of the data, and only the main process writes the card, curve and
merged model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_two_process_ddp_on_cpu(generate_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone", "-m", "matrix_align", "train",
        "--data", str(generate_dir), "--model", str(tiny_model_dir), "--output", str(out),
        "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1", "--max-length", "128",
        "--merge", "--set", "gradient_checkpointing=false", "--set", "save_strategy=no",
        "--set", "trainer_args.disable_tqdm=true",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("done:") == 1  # one report, from the main process
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "x 2 process(es)" in card
    assert (out / "merged" / "config.json").exists()
    assert (out / "adapter" / "adapter_model.safetensors").exists()
