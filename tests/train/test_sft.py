"""`matrix-align train` end to end on CPU: a few SFT steps of a tiny random Qwen2 on a tiny
MATRIX dataset. The loss is finite and goes down, the adapter is saved, reloads (through the
transformers backend, as simulate/evaluate would use it) and generates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.errors import MatrixAlignError
from tests.train.helpers import make_generate_dir

FAST = [
    "--max-steps", "6", "--lr", "1e-2", "--batch-size", "2", "--grad-accum", "1",
    "--max-length", "256", "--set", "gradient_checkpointing=false", "--set", "save_strategy=no",
    "--set", "trainer_args.disable_tqdm=true", "--set", "warmup_ratio=0",
]  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["train", *args])


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("sft")
    data = make_generate_dir(root / "demo")
    out = root / "demo-sft"
    result = invoke("--data", str(data), "--model", str(tiny_model_dir), "--output", str(out),
                    "--merge", *FAST)  # fmt: skip
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out


def test_loss_is_finite_and_decreases(sft_run: Path) -> None:
    points = json.loads((sft_run / "loss_curve.json").read_text(encoding="utf-8"))
    losses = [p["loss"] for p in points]
    assert len(losses) >= 5 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    metrics = json.loads((sft_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["steps"] == 6 and metrics["finetune"] == "lora"


def test_outputs_are_complete(sft_run: Path, tiny_model_dir: Path) -> None:
    adapter = sft_run / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert (adapter / "adapter_model.safetensors").exists()
    assert (adapter / "tokenizer_config.json").exists()
    assert not list(sft_run.rglob("*.bin")) and not list(sft_run.rglob("*.pkl"))  # no pickles
    assert (sft_run / "merged" / "config.json").exists()
    png = (sft_run / "loss_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    card = (sft_run / "README.md").read_text(encoding="utf-8")
    assert "prompt_completion.jsonl" in card and "r=8" in card
    header = card.split("---")[1]
    # A local base model has no Hub id: no base_model rather than a path of this machine.
    assert "base_model:" not in header and str(tiny_model_dir) not in header
    assert "pipeline_tag: text-generation" in header and "library_name: peft" in header
    assert "harmful: 2" in card
    cfg = (sft_run / "train_config.yaml").read_text(encoding="utf-8")
    assert "lora_alpha: 16" in cfg and str(tiny_model_dir) in cfg


def test_adapter_reloads_and_matches_the_merged_model(sft_run: Path, tiny_model_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    weights = load_file(str(sft_run / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # it trained
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with_adapter = PeftModel.from_pretrained(base, str(sft_run / "adapter")).eval()
    merged = AutoModelForCausalLM.from_pretrained(sft_run / "merged").eval()
    ids = torch.tensor([[151644, 872, 198, 9707, 151645]])
    with torch.no_grad():
        torch.testing.assert_close(
            with_adapter(ids).logits, merged(ids).logits, rtol=1e-4, atol=1e-4
        )


async def test_trained_model_answers_through_the_transformers_backend(sft_run: Path) -> None:
    from matrix_align.llm.transformers_backend import TransformersModel

    for model in (TransformersModel(str(sft_run)), TransformersModel(str(sft_run / "merged"))):
        reply = await model.complete(
            [{"role": "user", "content": "Is it fine to read my partner's messages?"}],
            max_tokens=6,
            temperature=0.0,
            seed=1,
        )
        assert reply.completion_tokens > 0 and reply.prompt_tokens > 5
        assert reply.finish_reason in ("stop", "length")
    adapter_model = TransformersModel(str(sft_run), merge_adapter=False)
    assert adapter_model._resolve()[1] is None  # the merged folder wins when present


def test_a_rerun_without_merge_removes_the_stale_merged_model(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = make_generate_dir(tmp_path / "demo")
    out = tmp_path / "demo-sft"
    base = ("--data", str(data), "--model", str(tiny_model_dir), "--output", str(out), *FAST)
    first = invoke(*base, "--max-steps", "1", "--merge")
    assert first.exit_code == 0, f"{first.output}\n{first.exception!r}"
    assert (out / "merged" / "merged_from.json").exists()
    again = invoke(*base, "--max-steps", "1", "--overwrite")
    assert again.exit_code == 0, f"{again.output}\n{again.exception!r}"
    assert not (out / "merged").exists() and "removed" in again.output
    assert "`merged/`" not in (out / "README.md").read_text(encoding="utf-8")


def test_an_eval_fraction_reports_an_eval_loss(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = make_generate_dir(tmp_path / "demo")
    out = tmp_path / "demo-sft"
    result = invoke("--data", str(data), "--model", str(tiny_model_dir), "--output", str(out),
                    *FAST, "--max-steps", "2", "--eval-fraction", "0.25")  # fmt: skip
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "eval loss" in result.output and "1 of the records held out" in result.output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_train"] == 3 and metrics["n_eval"] == 1
    assert math.isfinite(metrics["final_eval_loss"])
    assert any("eval_loss" in entry for entry in metrics["log_history"])
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| eval loss (first -> last) |" in card and "| eval data |" in card


def test_the_tracking_extra_logs_to_tensorboard(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tracking extra is not installed")
    data = make_generate_dir(tmp_path / "demo")
    out = tmp_path / "demo-sft"
    result = invoke("--data", str(data), "--model", str(tiny_model_dir), "--output", str(out),
                    *FAST, "--max-steps", "1",
                    "--set", "trainer_args.report_to=tensorboard")  # fmt: skip
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert list(out.rglob("events.out.tfevents.*"))


def test_dry_run_checks_and_prints_without_training(generate_dir: Path, tiny_model_dir: Path,
                                                    tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "dry"
    result = invoke("--data", str(generate_dir), "--model", str(tiny_model_dir),
                    "--output", str(out), "--dry-run", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "completion_only_loss = True" in result.output
    assert "learning_rate = 0.01" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--method", "dpo", "--data", "{sft_file}"], "lacks the column(s) chosen, rejected"),
        (["--model", "./nowhere/model"], "Unknown model"),
        (["--qlora"], "CUDA"),
        (["--precision", "bf16"], "CUDA"),
        (["--output", "{trained}"], "already holds a trained model"),
        (["--set", "lora_rank=4"], "lora_rank"),
    ],
)
def test_bad_input_fails_before_training(
    extra: list[str], needle: str, generate_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    sft_file = generate_dir / "exports" / "jsonl" / "prompt_completion.jsonl"
    trained = tmp_path / "trained"
    (trained / "adapter").mkdir(parents=True)
    fill = {"sft_file": str(sft_file), "trained": str(trained)}
    extra = [e.format(**fill) for e in extra]
    base = {
        "--data": str(generate_dir),
        "--model": str(tiny_model_dir),
        "--output": str(tmp_path / "o"),
    }
    for flag in list(base):
        if flag in extra:
            del base[flag]
    args = [x for kv in base.items() for x in kv] + extra
    result = invoke(*args, "--dry-run")
    assert isinstance(result.exception, MatrixAlignError), result.output
    assert needle in str(result.exception)
