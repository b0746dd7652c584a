"""TrainConfig: the paper's defaults, YAML + command-line overrides -> TRL trainer arguments,
and the GPU-only options refused on a machine without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.train.config import Environment, TrainConfig, fit_to_fields, parse_set_options

CPU = Environment(cuda=False, bf16=False, bitsandbytes=False)
GPU = Environment(cuda=True, bf16=True, bitsandbytes=True, device_name="NVIDIA H100")


def test_defaults_are_the_papers_recipe() -> None:
    cfg = TrainConfig()
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (8, 16, 0.05)
    assert cfg.learning_rate == 2e-5 and cfg.num_train_epochs == 3
    assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (1, 8)
    assert (cfg.lr_scheduler_type, cfg.warmup_ratio, cfg.max_length) == ("cosine", 0.03, 1024)
    assert cfg.resolve_finetune(GPU) == "qlora"  # QLoRA where it can run...
    assert cfg.resolve_finetune(CPU) == "lora"  # ...plain LoRA elsewhere


def test_yaml_then_overrides_resolve_to_trainer_args(tmp_path: Path) -> None:
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text(
        "method: sft\nlora_r: 16\nlearning_rate: 1.0e-4\nmax_length: 512\nsave_strategy: no\n"
        "trainer_args:\n  optim: adamw_torch\n  report_to: wandb\n",
        encoding="utf-8",
    )
    overrides = {"max_steps": 10, "learning_rate": None, "data": "d", "model": "m"}
    overrides.update(parse_set_options(["trainer_args.optim=sgd", "gradient_accumulation_steps=2"]))
    cfg = TrainConfig.load(yaml_file, overrides)
    assert cfg.lora_r == 16 and cfg.learning_rate == 1e-4  # None does not override the file
    assert cfg.save_strategy == "no"
    kwargs = cfg.trainer_kwargs(CPU, tmp_path / "ckpt")
    assert kwargs["output_dir"] == str(tmp_path / "ckpt")
    assert kwargs["learning_rate"] == 1e-4
    assert kwargs["max_steps"] == 10
    assert kwargs["max_length"] == 512
    assert kwargs["gradient_accumulation_steps"] == 2
    assert kwargs["per_device_train_batch_size"] == 1
    assert kwargs["lr_scheduler_type"] == "cosine" and kwargs["warmup_steps"] == 0.03
    assert kwargs["completion_only_loss"] is True
    assert kwargs["bf16"] is False and kwargs["fp16"] is False and kwargs["use_cpu"] is True
    # trainer_args merged key by key: the file's report_to kept, optim overridden.
    assert kwargs["report_to"] == "wandb" and kwargs["optim"] == "sgd"
    assert "beta" not in kwargs


def test_gpu_and_dpo_arguments() -> None:
    cfg = TrainConfig(method="dpo", beta=0.2)
    kwargs = cfg.trainer_kwargs(GPU, "out")
    assert kwargs["bf16"] is True and kwargs["use_cpu"] is False
    assert kwargs["beta"] == 0.2 and "completion_only_loss" not in kwargs


def test_kwargs_build_real_trl_configs(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from trl import DPOConfig, SFTConfig

    cfg = TrainConfig.load(None, {"lora_r": 4, "max_steps": 3, "learning_rate": 3e-4})
    sft = SFTConfig(**fit_to_fields(cfg.trainer_kwargs(CPU, tmp_path), SFTConfig))
    assert sft.learning_rate == 3e-4 and sft.max_steps == 3 and sft.max_length == 1024
    assert sft.gradient_accumulation_steps == 8 and sft.completion_only_loss is True
    assert sft.lr_scheduler_type == "cosine" and sft.warmup_steps == 0.03
    assert sft.bf16 is False  # TRL would default to True; we decide from the machine
    assert sft.gradient_checkpointing is True  # the old name mirrors the new one
    dpo_kwargs = cfg.model_copy(update={"method": "dpo"}).trainer_kwargs(CPU, tmp_path)
    dpo = DPOConfig(**fit_to_fields(dpo_kwargs, DPOConfig))
    assert dpo.beta == 0.1 and dpo.learning_rate == 3e-4


@pytest.mark.parametrize(
    ("values", "env", "needle"),
    [
        ({"finetune": "qlora"}, CPU, "CUDA"),
        (
            {"finetune": "qlora"},
            Environment(cuda=True, bf16=True, bitsandbytes=False),
            "bitsandbytes",
        ),
        ({"precision": "bf16"}, CPU, "CUDA"),
        ({"precision": "fp16"}, CPU, "CUDA"),
        ({"precision": "bf16"}, Environment(cuda=True, bf16=False, bitsandbytes=False), "bf16"),
    ],
)
def test_gpu_only_options_are_refused_clearly(values: dict, env: Environment, needle: str) -> None:
    cfg = TrainConfig(**values)
    with pytest.raises(MatrixAlignError, match=needle):
        cfg.resolve_finetune(env)
        cfg.trainer_kwargs(env, "out")


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="lora_rank"):
        TrainConfig.load(None, {"lora_rank": 8})
    with pytest.raises(MatrixAlignError, match="learning_rate"):
        TrainConfig.load(None, {"learning_rate": -1})
    with pytest.raises(MatrixAlignError, match="not found"):
        TrainConfig.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora_r: [1,\n", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="not valid YAML"):
        TrainConfig.load(bad)
    with pytest.raises(MatrixAlignError, match="'learning_rate'"):
        TrainConfig(trainer_args={"learning_rate": 1.0}).trainer_kwargs(CPU, "out")


def test_set_options_parse_yaml_values() -> None:
    parsed = parse_set_options(
        ["lora-r=16", "lora_target_modules=[q_proj, v_proj]", "trainer_args.report_to=wandb",
         "save_strategy=no", "merge=off"]
    )  # fmt: skip
    assert parsed == {
        "lora_r": 16,
        "save_strategy": "no",
        "merge": "off",
        "lora_target_modules": ["q_proj", "v_proj"],
        "trainer_args": {"report_to": "wandb"},
    }
    assert TrainConfig.build(**parsed).merge is False
    with pytest.raises(MatrixAlignError, match="KEY=VALUE"):
        parse_set_options(["lora_r"])


def test_resolved_config_round_trips_through_yaml(tmp_path: Path) -> None:
    cfg = TrainConfig(model="m", data="d", output="o", lora_r=4, trainer_args={"optim": "sgd"})
    file = tmp_path / "train_config.yaml"
    file.write_text(cfg.to_yaml(), encoding="utf-8")
    assert TrainConfig.load(file) == cfg


def test_eval_data_schedules_an_eval_loss(tmp_path: Path) -> None:
    cfg = TrainConfig(eval_fraction=0.1, max_steps=8)
    kwargs = cfg.trainer_kwargs(CPU, tmp_path)
    assert (kwargs["eval_strategy"], kwargs["eval_steps"]) == ("steps", 2)
    assert kwargs["per_device_eval_batch_size"] == cfg.per_device_train_batch_size
    by_epoch = TrainConfig(eval_data="runs/demo/exports/parquet/test").trainer_kwargs(CPU, tmp_path)
    assert by_epoch["eval_strategy"] == "epoch" and "eval_steps" not in by_epoch
    assert (
        TrainConfig(eval_fraction=0.1, eval_steps=3).trainer_kwargs(CPU, tmp_path)["eval_steps"]
        == 3
    )
    assert "eval_strategy" not in TrainConfig().trainer_kwargs(CPU, tmp_path)


def test_evaluation_without_eval_data_is_one_clear_error(tmp_path: Path) -> None:
    # It once ended in a 62-line traceback ("you didn't pass an eval_dataset").
    cfg = TrainConfig.load(None, parse_set_options(["trainer_args.eval_strategy=steps"]))
    with pytest.raises(MatrixAlignError, match="no data to evaluate on") as error:
        cfg.trainer_kwargs(CPU, tmp_path)
    assert "--eval-fraction" in (error.value.hint or "")
    with pytest.raises(MatrixAlignError, match="eval_data or eval_fraction, not both"):
        TrainConfig.build(eval_data="d", eval_fraction=0.1)
    with pytest.raises(MatrixAlignError, match="eval_fraction"):
        TrainConfig.build(eval_fraction=1.5)


def test_a_tracker_that_is_not_installed_is_named(monkeypatch) -> None:
    from matrix_align.train import config

    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MatrixAlignError, match="report_to=tensorboard needs the tensorboard"):
        config.check_trackers({"report_to": "tensorboard"})
    with pytest.raises(MatrixAlignError, match="wandb"):
        config.check_trackers({"report_to": ["none", "wandb"]})
    config.check_trackers({"report_to": "none"})
    config.check_trackers({})


def test_settings_trl_rejects_are_one_error_before_any_model(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from matrix_align.train.trainer import trainer_config

    cfg = TrainConfig.load(None, parse_set_options(["trainer_args.no_such_argument=1"]))
    with pytest.raises(MatrixAlignError, match="The trainer refused its settings") as error:
        trainer_config(cfg, CPU, tmp_path)
    assert "no_such_argument" in error.value.message and "trainer_args" in (error.value.hint or "")
