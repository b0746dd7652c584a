"""``train --preset``: the paper's training recipe, for each of its model sizes, as one name.

The MATRIX paper fine-tunes Wizard-Vicuna-Uncensored 7B, 13B and 30B with FastChat's LoRA
trainer and one recipe: QLoRA r=8, alpha 16, dropout 0.05; lr 2e-5, cosine schedule, warmup
0.03; 3 epochs; per-device batch 1 x gradient accumulation 8; sequences up to 1,024 tokens;
the Vicuna v1.1 conversation format; DeepSpeed ZeRO-2. A preset sets every one of those
fields, plus the base model of its size.

Two choices are the presets' own, made to match the authors' command rather than our
defaults (``TrainConfig``):

- **LoRA targets ``q_proj`` and ``v_proj``.** The paper does not name them; the authors
  trained with FastChat's ``train_lora.py``, whose default targets are these two. Our own
  default adapts every linear layer (QLoRA's recipe); which is better for MATRIX data has
  not been measured here, so the presets follow the authors and the default stays ours.
- **QLoRA, not ``auto``.** The paper's runs are 4-bit; on a machine without CUDA and
  bitsandbytes the preset is refused with a pointer to ``--finetune lora`` rather than
  quietly becoming a different recipe.

ZeRO-2 is not a training setting but a way of launching: the preset names the shipped
accelerate config (``launcher``), and ``launcher_note`` says how to launch with it when a
preset run is not under DeepSpeed.

Precedence (``TrainConfig.load``): the preset, then a ``--config`` file, then the command
line (options and ``--set``); whatever the user gives explicitly wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from matrix_align.errors import MatrixAlignError

# The fields every paper preset sets (TrainConfig names).
PAPER_RECIPE: dict[str, Any] = {
    "method": "sft",
    "finetune": "qlora",
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "v_proj"],  # FastChat train_lora.py's default
    "learning_rate": 2e-5,
    "num_train_epochs": 3.0,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 8,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.03,
    "max_length": 1024,
    "chat_template": "vicuna",  # Vicuna v1.1, bundled: the base models have no template
}


@dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the paper's base model of this size (a Hugging Face id)
    size: str  # as --help names it
    launcher: str = "deepspeed_zero2"  # the shipped accelerate config the paper's runs match

    def values(self) -> dict[str, Any]:
        """The TrainConfig fields this preset sets."""
        return {**PAPER_RECIPE, "model": self.model}


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("paper-7b", "cognitivecomputations/Wizard-Vicuna-7B-Uncensored", "7B"),
        Preset("paper-13b", "cognitivecomputations/Wizard-Vicuna-13B-Uncensored", "13B"),
        Preset("paper-30b", "cognitivecomputations/Wizard-Vicuna-30B-Uncensored", "30B"),
    )
}  # fmt: skip


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise MatrixAlignError(
            f"Unknown --preset {name!r}.", hint=f"choose from: {', '.join(PRESETS)}"
        ) from None


def presets_help() -> str:
    """The --preset option's help: what a preset sets, and the names."""
    names = ", ".join(PRESETS)
    sizes = ", ".join(p.size for p in PRESETS.values())
    return (
        f"{names}: the paper's recipe for one model size: QLoRA r8/alpha 16/dropout 0.05 on "
        "q_proj,v_proj (FastChat's default), lr 2e-5 cosine, warmup 0.03, 3 epochs, batch 1 x "
        "8, length 1024, the Vicuna v1.1 template, and the base model of that size "
        f"(Wizard-Vicuna-Uncensored {sizes}). ZeRO-2: launch with the deepspeed_zero2 "
        "accelerate config. Options given explicitly win over the preset."
    )


def under_deepspeed(trainer_args: dict[str, Any]) -> bool:
    """Whether this process runs under DeepSpeed: launched by ``accelerate launch`` with a
    DeepSpeed config (accelerate says so in the environment), or given a DeepSpeed config
    through ``--set trainer_args.deepspeed=...``."""
    launched = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").strip().lower() == "true"
    return launched or bool(trainer_args.get("deepspeed"))


def launcher_note(preset: Preset, trainer_args: dict[str, Any]) -> str | None:
    """What to tell a user who runs a preset outside DeepSpeed (None when under it)."""
    if under_deepspeed(trainer_args):
        return None
    return (
        f"the paper trained under DeepSpeed ZeRO-2; this run is not under DeepSpeed. For the "
        f'same set-up: accelerate launch --config_file "$(matrix-align train '
        f'--accelerate-config {preset.launcher})" -m matrix_align train --preset {preset.name} '
        "... (one GPU without it trains the same recipe, only unsharded)"
    )
