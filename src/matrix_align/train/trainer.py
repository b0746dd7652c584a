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

from matrix_align.errors import MatrixAlignError
from matrix_align.train.config import Environment, TrainConfig, fit_to_fields


def trainer_config(cfg: TrainConfig, env: Environment, output_dir: Path) -> Any:
    """TRL's ``SFTConfig`` or ``DPOConfig`` for ``cfg``. Built before any model is loaded
    (``run.prepare``), so a ``trainer_args`` value TRL rejects is one error in seconds."""
    if cfg.method == "sft":
        from trl import SFTConfig as Config
    else:
        from trl import DPOConfig as Config
    try:
        return Config(**fit_to_fields(cfg.trainer_kwargs(env, output_dir), Config))
    except (TypeError, ValueError, ImportError) as exc:
        raise _refused(exc) from None


def _refused(exc: Exception) -> MatrixAlignError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return MatrixAlignError(
        f"The trainer refused its settings: {first[:400]}",
        hint="check the --set trainer_args.* values (and --config) against transformers' "
        "TrainingArguments; see docs/train.md",
    )


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
    eval_dataset: Any | None = None,
) -> Any:
    """The TRL trainer for ``cfg`` (an ``SFTTrainer`` or a ``DPOTrainer``); ``model`` is
    loaded already (see models.load_causal_lm)."""
    extra: dict[str, Any] = {}
    if cfg.method == "sft":
        from trl import SFTTrainer as Trainer
    else:
        from trl import DPOTrainer as Trainer

        extra["ref_model"] = None
    args = trainer_config(cfg, env, output_dir)
    try:
        return Trainer(
            model=model,
            **extra,
            args=args,
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
    except (TypeError, ValueError, ImportError) as exc:
        raise _refused(exc) from None
