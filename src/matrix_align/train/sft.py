"""Supervised fine-tuning on MATRIX answers: one config (SFTConfig) + one trainer (SFTTrainer).

The data arrive in TRL's conversational prompt-completion form (see data.py), so TRL renders
each record with the model's own chat template and masks every prompt token: the loss covers
the assistant completion only (its text and the template's end-of-turn tokens), with no token
added to the vocabulary. tests/train/test_mask.py checks that mask against the real template.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix_align.train.config import Environment, TrainConfig, fit_to_fields

if TYPE_CHECKING:
    from trl import SFTTrainer


def build_sft_trainer(
    cfg: TrainConfig,
    env: Environment,
    *,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    output_dir: Path,
    peft_config: Any | None = None,
    callbacks: list[Any] | None = None,
) -> SFTTrainer:
    """The TRL trainer for ``cfg``; ``model`` is loaded already (see models.load_causal_lm)."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**fit_to_fields(cfg.trainer_kwargs(env, output_dir), SFTConfig))
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
