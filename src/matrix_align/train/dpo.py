"""Preference training on MATRIX pairs: one config (DPOConfig) + one trainer (DPOTrainer).

The paper fine-tunes with SFT only; DPO is offered because ``generate`` yields natural pairs
(chosen = the consequence-aware MATRIX answer, rejected = the model's initial answer). With a
LoRA adapter no second model is loaded: TRL computes the reference log-probabilities with the
adapter switched off, which halves memory against a separate reference copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix_align.train.config import Environment, TrainConfig, fit_to_fields

if TYPE_CHECKING:
    from trl import DPOTrainer


def build_dpo_trainer(
    cfg: TrainConfig,
    env: Environment,
    *,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    output_dir: Path,
    peft_config: Any | None = None,
    callbacks: list[Any] | None = None,
) -> DPOTrainer:
    """The TRL trainer for ``cfg``; full fine-tuning lets TRL copy the model as reference."""
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(**fit_to_fields(cfg.trainer_kwargs(env, output_dir), DPOConfig))
    return DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
