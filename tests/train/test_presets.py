"""`train --preset paper-7b|paper-13b|paper-30b`: the paper's recipe and base model for each
size, under every value the user gives explicitly (config file, options, --set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.errors import MatrixAlignError
from matrix_align.train.config import Environment, TrainConfig, parse_set_options
from matrix_align.train.presets import PRESETS, launcher_note

CPU = Environment(cuda=False, bf16=False, bitsandbytes=False)
GPU = Environment(cuda=True, bf16=True, bitsandbytes=True, device_name="NVIDIA H100")


@pytest.mark.parametrize("name", ["paper-7b", "paper-13b", "paper-30b"])
def test_each_preset_is_the_papers_recipe_with_its_model(name: str) -> None:
    cfg = TrainConfig.load(None, {"preset": name})
    assert cfg.preset == name
    assert cfg.model == f"cognitivecomputations/Wizard-Vicuna-{name[6:].upper()}-Uncensored"
    assert (cfg.method, cfg.finetune) == ("sft", "qlora")
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (8, 16, 0.05)
    assert cfg.lora_target_modules == ["q_proj", "v_proj"]
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.max_length) == (2e-5, 3.0, 1024)
    assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (1, 8)
    assert (cfg.lr_scheduler_type, cfg.warmup_ratio) == ("cosine", 0.03)
    assert cfg.chat_template == "vicuna"
    assert cfg.resolve_finetune(GPU) == "qlora"
    kwargs = cfg.trainer_kwargs(GPU, "out")
    assert kwargs["learning_rate"] == 2e-5 and kwargs["gradient_accumulation_steps"] == 8


def test_the_default_targets_stay_all_linear() -> None:
    assert TrainConfig().lora_target_modules == "all-linear" and TrainConfig().preset is None


def test_explicit_values_win_over_the_preset(tmp_path: Path) -> None:
    overrides = {"preset": "paper-13b", "lora_r": 16, "model": "my/model", "finetune": "lora"}
    overrides.update(parse_set_options(["lora_target_modules=all-linear", "max_length=2048"]))
    cfg = TrainConfig.load(None, overrides)
    assert (cfg.lora_r, cfg.model, cfg.finetune) == (16, "my/model", "lora")
    assert cfg.lora_target_modules == "all-linear" and cfg.max_length == 2048
    assert cfg.lora_alpha == 16 and cfg.chat_template == "vicuna"  # the rest: the preset's

    config = tmp_path / "train.yaml"
    config.write_text("preset: paper-30b\nlearning_rate: 1.0e-4\n", encoding="utf-8")
    from_file = TrainConfig.load(config, {})
    assert from_file.preset == "paper-30b" and from_file.learning_rate == 1e-4
    assert from_file.model is not None and "30B" in from_file.model
    flag_wins = TrainConfig.load(config, {"preset": "paper-7b", "learning_rate": None})
    assert flag_wins.preset == "paper-7b" and "7B" in str(flag_wins.model)
    assert flag_wins.learning_rate == 1e-4  # the file's explicit value still beats the preset


def test_resolved_settings_reload_to_the_same_config(tmp_path: Path) -> None:
    cfg = TrainConfig.load(None, {"preset": "paper-7b", "lora_r": 4})
    saved = tmp_path / "train_config.yaml"
    saved.write_text(cfg.to_yaml(), encoding="utf-8")
    assert TrainConfig.load(saved, {}) == cfg


def test_unknown_presets_and_qlora_without_cuda_are_clear_errors() -> None:
    with pytest.raises(MatrixAlignError, match="Unknown --preset 'paper-70b'") as caught:
        TrainConfig.load(None, {"preset": "paper-70b"})
    assert "paper-7b, paper-13b, paper-30b" in str(caught.value)
    with pytest.raises(MatrixAlignError, match="QLoRA \\(4-bit\\) needs a CUDA GPU"):
        TrainConfig.load(None, {"preset": "paper-7b"}).resolve_finetune(CPU)


def test_the_zero2_note_unless_under_deepspeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    note = launcher_note(PRESETS["paper-13b"], {})
    assert note is not None and "--accelerate-config deepspeed_zero2" in note
    assert launcher_note(PRESETS["paper-13b"], {"deepspeed": "ds.json"}) is None
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert launcher_note(PRESETS["paper-13b"], {}) is None


def test_help_lists_the_presets() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "--preset" in text and "paper-7b, paper-13b, paper-30b" in text
    assert "q_proj,v_proj" in text


def test_dry_run_with_a_preset_shows_the_recipe(
    generate_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    result = CliRunner().invoke(
        app,
        ["train", "--preset", "paper-7b", "--finetune", "lora", "--data", str(generate_dir),
         "--model", str(tiny_model_dir), "--output", str(tmp_path / "o"), "--dry-run"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "preset paper-7b" in text and "deepspeed_zero2" in text
    assert "targets ['q_proj', 'v_proj']; chat template: vicuna" in text
    assert "learning_rate = 2e-05" in text and "gradient_accumulation_steps = 8" in text
    assert not (tmp_path / "o").exists()
