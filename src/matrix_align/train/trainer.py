"""The TRL trainer of a run: one config and one trainer, SFT or DPO by ``cfg.method``.

SFT (the paper's method): the data arrive in TRL's conversational prompt-completion form
(see data.py), so TRL renders each record with the model's own chat template and masks every
prompt token: the loss covers the assistant completion only (its text and the template's
end-of-turn tokens), with no token added to the vocabulary. tests/train/test_mask.py checks
that mask against the real template.

DPO: offered because ``generate`` yields natural pairs (chosen = the consequence-aware MATRIX
answer, rejected = the model's initial answer). With a LoRA adapter no second model is
loaded: TRL computes the reference log-probabilities with the adapter switched off, which
halves memory against a separate reference copy; full fine-tuning lets TRL copy the model
as reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matrix_align.train.config import Environment, TrainConfig, fit_to_fields


def build_trainer(
    cfg: TrainConfig,
    env: Environment,
    *,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    output_dir: Path,
    peft_config: Any | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """The TRL trainer for ``cfg`` (an ``SFTTrainer`` or a ``DPOTrainer``); ``model`` is
    loaded already (see models.load_causal_lm)."""
    extra: dict[str, Any] = {}
    if cfg.method == "sft":
        from trl import SFTConfig as Config
        from trl import SFTTrainer as Trainer
    else:
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer

        extra["ref_model"] = None
    args = Config(**fit_to_fields(cfg.trainer_kwargs(env, output_dir), Config))
    return Trainer(
        model=model,
        **extra,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
