"""Training settings: one place defines each default, taken from the paper (docs/method.md).

The paper's recipe: QLoRA r=8, alpha=16, dropout 0.05, lr 2e-5, 3 epochs, per-device batch 1
x gradient accumulation 8, cosine schedule, warmup 0.03, max length 1024, DeepSpeed ZeRO-2.
``TrainConfig`` holds these values; a YAML file and command-line overrides change them; and
``trainer_kwargs`` turns the result into the keyword arguments of TRL's ``SFTConfig`` /
``DPOConfig``. That last step is a pure function of the config and of a small ``Environment``
record (is there CUDA? bf16? bitsandbytes?), so it can be tested without torch or a GPU, and
every GPU-only choice is checked here, before a model is loaded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matrix_align.errors import MatrixAlignError, build_checked
from matrix_align.io import parse_assignments, read_yaml_mapping

Method = Literal["sft", "dpo"]
Finetune = Literal["auto", "qlora", "lora", "full"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]

# Keys that TrainConfig derives itself; setting them through ``trainer_args`` would silently
# fight the typed fields, so it is refused with a pointer to the right field.
_OWNED_TRAINER_KEYS = {
    "output_dir": "output",
    "learning_rate": "learning_rate",
    "num_train_epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "lr_scheduler_type": "lr_scheduler_type",
    "warmup_steps": "warmup_ratio",
    "warmup_ratio": "warmup_ratio",
    "max_length": "max_length",
    "bf16": "precision",
    "fp16": "precision",
    "seed": "seed",
    "beta": "beta",
    "gradient_checkpointing": "gradient_checkpointing",
    "activation_checkpointing": "gradient_checkpointing",
    "eval_steps": "eval_steps",
}
# report_to names -> the package each tracker needs (transformers imports it only when the
# trainer starts, and a missing one ends the run in a traceback after the model loaded).
TRACKERS = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "trackio": "trackio",
    "comet_ml": "comet_ml",
    "clearml": "clearml",
    "neptune": "neptune",
    "dvclive": "dvclive",
}


class TrainConfig(BaseModel):
    """Everything ``matrix-align train`` needs. Field defaults are the paper's recipe."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    preset: str | None = Field(
        None,
        description="the named recipe these settings started from (train.presets); "
        "the fields below are the resolved values, explicit ones included",
    )
    method: Method = Field("sft", description="sft on MATRIX answers, or dpo on chosen/rejected")
    model: str | None = Field(
        None,
        description="Hugging Face id, local folder, .gguf file, 'embedded' (the default bundled "
        "model) or a bundled model's short name (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b)",
    )
    data: str | None = Field(None, description="generate output dir, JSONL/Parquet file, HF dir")
    output: str | None = Field(None, description="folder for adapter, metrics, card")
    eval_data: str | None = Field(
        None,
        description="data to report an eval loss on, any form --data takes (e.g. an "
        "export's test split: runs/demo/exports/parquet/test)",
    )
    eval_fraction: float | None = Field(
        None, gt=0.0, lt=1.0, description="or hold this share of --data out for the eval loss"
    )
    eval_steps: int | None = Field(
        None,
        ge=1,
        description="an eval loss every N optimiser steps (default: 4 over a --max-steps run, "
        "else at each epoch's end)",
    )

    finetune: Finetune = Field(
        "auto",
        description="auto: QLoRA when CUDA and bitsandbytes are present, else LoRA; "
        "qlora/lora: adapters; full: all weights",
    )
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    lora_target_modules: str | list[str] = Field(
        "all-linear",
        description="PEFT target modules; the paper does not name them, QLoRA's own recipe "
        "adapts every linear layer",
    )

    learning_rate: float = Field(2e-5, gt=0.0)
    num_train_epochs: float = Field(3.0, gt=0.0)
    max_steps: int = Field(-1, description="stop after this many optimiser steps (-1: epochs)")
    per_device_train_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(8, ge=1)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    max_length: int = Field(1024, ge=16)
    precision: Precision = Field(
        "auto", description="auto: bf16 on a CUDA GPU that supports it, else fp32"
    )
    gradient_checkpointing: bool = True
    beta: float = Field(0.1, gt=0.0, description="DPO: strength of the pull to the reference")
    seed: int = 42
    logging_steps: int = Field(1, ge=1, description="a loss point every N optimiser steps")
    save_strategy: Literal["no", "steps", "epoch"] = "epoch"
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 2
    chat_template: str | None = Field(
        None,
        description="replace the tokenizer's chat template: a bundled name (vicuna) or a "
        ".jinja/.j2 file; needed for base models without one (the paper's Wizard-Vicuna)",
    )
    merge: bool = Field(False, description="also write a merged full model to OUTPUT/merged")
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        description="extra TRL/transformers TrainingArguments, passed through (report_to, "
        "deepspeed, fsdp, optim, ...)",
    )

    @model_validator(mode="after")
    def _one_eval_source(self) -> TrainConfig:
        if self.eval_data and self.eval_fraction:
            raise ValueError("give eval_data or eval_fraction, not both")
        return self

    @property
    def evaluates(self) -> bool:
        return bool(self.eval_data or self.eval_fraction)

    @field_validator("save_strategy", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        """`save_strategy: no` in a YAML file arrives as False (YAML 1.1); it means "no"."""
        return "no" if value is False else value

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def build(cls, **values: Any) -> TrainConfig:
        """Construct from user values (None means 'not given'), with one clear error."""
        return build_checked(
            cls,
            values,
            "training settings",
            hint="see `matrix-align train --help` and docs/train.md for the fields",
        )

    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None
    ) -> TrainConfig:
        """A preset first (``overrides["preset"]``, else the file's ``preset``), then the YAML
        file, then ``overrides`` (command-line values; None = not given) on top: what is
        given explicitly always wins over a preset.

        ``trainer_args`` from both places are merged key by key rather than replaced, so a
        ``--set trainer_args.report_to=wandb`` does not drop the file's ``deepspeed`` entry.
        """
        from matrix_align.train.presets import PRESETS, get_preset

        file_data = read_yaml_mapping(path) if path is not None else {}
        name = (overrides or {}).get("preset") or file_data.get("preset")
        data: dict[str, Any] = {}
        if name is not None:
            if not isinstance(name, str):
                raise MatrixAlignError(
                    f"Invalid training settings: preset: {name!r} is not a preset's name.",
                    hint=f"choose from: {', '.join(PRESETS)}",
                )
            data.update(get_preset(name).values())
            data["preset"] = name
        data.update({k: v for k, v in file_data.items() if k != "preset"})
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key == "trainer_args" and isinstance(value, dict):
                merged = dict(data.get("trainer_args") or {})
                merged.update(value)
                data["trainer_args"] = merged
            else:
                data[key] = value
        return cls.build(**data)

    def to_yaml(self) -> str:
        """The resolved settings, as written beside the adapter (reloadable with --config)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    # ---- resolution against the machine ------------------------------------------------

    def resolve_finetune(self, env: Environment) -> Literal["qlora", "lora", "full"]:
        """Pick the concrete fine-tuning mode; refuse QLoRA where it cannot run.

        QLoRA needs bitsandbytes' 4-bit CUDA kernels: asking for it without CUDA would fail
        deep inside model loading with an unhelpful message, so it is refused here.
        """
        if self.finetune == "auto":
            return "qlora" if env.cuda and env.bitsandbytes else "lora"
        if self.finetune == "qlora":
            if not env.cuda:
                raise MatrixAlignError(
                    "QLoRA (4-bit) needs a CUDA GPU, and none was found.",
                    hint="use --finetune lora (or full) on this machine",
                )
            if not env.bitsandbytes:
                raise MatrixAlignError(
                    "QLoRA (4-bit) needs the bitsandbytes package.",
                    hint="pip install bitsandbytes, or use --finetune lora",
                )
        return self.finetune

    def resolve_precision(self, env: Environment) -> Literal["bf16", "fp16", "fp32"]:
        """bf16/fp16 mixed precision are GPU options here: refuse them on a CPU-only machine."""
        if self.precision == "auto":
            return "bf16" if env.cuda and env.bf16 else "fp32"
        if self.precision in ("bf16", "fp16") and not env.cuda:
            raise MatrixAlignError(
                f"--precision {self.precision} needs a CUDA GPU, and none was found.",
                hint="use --precision fp32 (or auto) on a CPU",
            )
        if self.precision == "bf16" and not env.bf16:
            raise MatrixAlignError(
                "This GPU does not support bf16.", hint="use --precision fp16 or fp32"
            )
        return self.precision

    def trainer_kwargs(self, env: Environment, output_dir: str | Path) -> dict[str, Any]:
        """Keyword arguments for TRL's SFTConfig (method sft) or DPOConfig (method dpo).

        Everything is explicit, rather than left to TRL's own defaults (which differ from the
        paper: TRL turns bf16 on by default, uses lr 1e-6 for DPO, logs every 10 steps).
        """
        for key in self.trainer_args:
            if key in _OWNED_TRAINER_KEYS:
                raise MatrixAlignError(
                    f"trainer_args.{key} is set by matrix-align itself.",
                    hint=f"set the field {_OWNED_TRAINER_KEYS[key]!r} instead",
                )
        precision = self.resolve_precision(env)
        kwargs: dict[str, Any] = {
            "output_dir": str(output_dir),
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "lr_scheduler_type": self.lr_scheduler_type,
            # transformers 5 folded warmup_ratio into warmup_steps: a value below 1 is a ratio.
            "warmup_steps": self.warmup_ratio,
            "max_length": self.max_length,
            "bf16": precision == "bf16",
            "fp16": precision == "fp16",
            "use_cpu": not env.cuda,
            # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing
            # (see fit_to_fields for older versions). Non-reentrant checkpointing works with
            # frozen inputs (LoRA) and with DDP.
            "activation_checkpointing": self.gradient_checkpointing,
            "activation_checkpointing_kwargs": {"use_reentrant": False}
            if self.gradient_checkpointing
            else None,
            "logging_steps": self.logging_steps,
            "logging_first_step": True,
            "save_strategy": self.save_strategy,
            "save_steps": self.save_steps,
            "save_total_limit": self.save_total_limit,
            "seed": self.seed,
            "report_to": "none",
        }
        kwargs.update(self._eval_kwargs())
        if self.method == "sft":
            # Loss on the assistant completion only: the prompt-completion format makes TRL
            # mask every prompt token (the chat template's own rendering, no added tokens).
            kwargs["completion_only_loss"] = True
        else:
            kwargs["beta"] = self.beta
        kwargs.update(self.trainer_args)
        return kwargs

    def _eval_kwargs(self) -> dict[str, Any]:
        """The eval loss's schedule, with eval data; without any, an eval schedule given in
        trainer_args is refused (the trainer would stop at its start with a traceback)."""
        if not self.evaluates:
            asked = self.trainer_args.get("eval_strategy", "no") not in ("no", None, False)
            if asked or self.trainer_args.get("do_eval"):
                raise MatrixAlignError(
                    "trainer_args asks for evaluation, but there is no data to evaluate on.",
                    hint="add --eval-data SPEC (e.g. an export's test split) or "
                    "--eval-fraction F (e.g. 0.1)",
                )
            return {}
        steps = self.eval_steps or (max(1, self.max_steps // 4) if self.max_steps > 0 else None)
        return {
            "eval_strategy": "steps" if steps else "epoch",
            **({"eval_steps": steps} if steps else {}),
            "per_device_eval_batch_size": self.per_device_train_batch_size,
        }


def check_trackers(trainer_args: dict[str, Any]) -> None:
    """Every tracker ``report_to`` names is installed (see ``TRACKERS``)."""
    report_to = trainer_args.get("report_to") or []
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    for name in names:
        package = TRACKERS.get(str(name))
        if package and importlib.util.find_spec(package) is None:
            raise MatrixAlignError(
                f"trainer_args.report_to={name} needs the {package} package, which is not "
                "installed.",
                hint=(
                    "pip install 'matrix-align[tracking]'"
                    if package == "tensorboard"
                    else f"pip install {package}"
                )
                + ", or drop report_to",
            )


def fit_to_fields(kwargs: dict[str, Any], config_cls: type) -> dict[str, Any]:
    """Rename arguments to what the installed TrainingArguments calls them.

    Only the checkpointing names moved between the transformers versions we meet (the pinned
    one locally, an older one preinstalled on GPU images), so only those are translated.
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    out = dict(kwargs)
    for new, old in (
        ("activation_checkpointing", "gradient_checkpointing"),
        ("activation_checkpointing_kwargs", "gradient_checkpointing_kwargs"),
    ):
        if new in out and new not in names:
            out[old] = out.pop(new)
    return out


@dataclass(frozen=True)
class Environment:
    """What this machine can do, as far as the training options care."""

    cuda: bool
    bf16: bool
    bitsandbytes: bool
    device_name: str = "cpu"

    @classmethod
    def detect(cls) -> Environment:
        """Ask torch (imported here, not at module import) about the accelerator."""
        import torch

        cuda = bool(torch.cuda.is_available())
        return cls(
            cuda=cuda,
            bf16=cuda and bool(torch.cuda.is_bf16_supported()),
            bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
            device_name=torch.cuda.get_device_name(0) if cuda else "cpu",
        )


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """Turn ``--set key=value`` strings into overrides; values are parsed as YAML scalars.

    ``trainer_args.report_to=wandb`` (a dotted key) lands in the ``trainer_args`` mapping, so
    any TrainingArguments field is reachable from the command line without a dedicated flag.
    """
    example = "e.g. --set lora_r=16 or --set trainer_args.report_to=wandb"
    out: dict[str, Any] = {}
    for key, value in parse_assignments(items, example=example).items():
        if key.startswith("trainer_args."):
            out.setdefault("trainer_args", {})[key.removeprefix("trainer_args.")] = value
        else:
            out[key] = value
    return out
