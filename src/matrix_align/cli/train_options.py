"""The options of ``matrix-align train``, as option groups (``cli/option_groups.py``): the
data, model and method (``TrainData``), the recipe (``TrainRecipe``), how the run goes
(``TrainRun``), and ``overrides``, what they set over ``--config`` and ``--preset``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from matrix_align.cli.option_groups import OptionGroup, field_default
from matrix_align.errors import MatrixAlignError
from matrix_align.train.presets import presets_help

DATA = "Data and model"
RECIPE = "Recipe (defaults: the paper's)"
RUN = "Run"


def _default(field: str) -> str:
    """A TrainConfig default as the help quotes it, from its one definition."""
    from matrix_align.train.config import TrainConfig

    return field_default(TrainConfig, field)


def _print_accelerate_config(name: str | None) -> None:
    if name is not None:
        from matrix_align.train.accelerate_configs import accelerate_config

        typer.echo(str(accelerate_config(name)))
        raise typer.Exit()


@dataclass(kw_only=True)
class TrainData(OptionGroup):
    """The data, the base model, where the result goes, the method."""

    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="A `generate` output folder, a JSONL/Parquet file, a save_to_disk folder, "
            "or a Hub dataset: OWNER/NAME or hf://OWNER/NAME[:CONFIG][@SPLIT].",
            rich_help_panel=DATA,
        ),
    ] = None
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Base model: Hugging Face id, local folder, .gguf file, 'embedded' (the "
            "default bundled model) or a bundled model's short name (qwen2.5-coder-1.5b, "
            "qwen2.5-coder-0.5b).",
            rich_help_panel=DATA,
        ),
    ] = None
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the adapter, metrics, loss curve and model card.",
            rich_help_panel=DATA,
        ),
    ] = None
    method: Annotated[
        str | None,
        typer.Option(
            "--method", help="sft (paper) or dpo (chosen/rejected pairs).", rich_help_panel=DATA
        ),
    ] = None

    eval_data: Annotated[
        str | None,
        typer.Option(
            "--eval-data",
            help="Data to report an eval loss on (log, card, loss plot), any form --data "
            "takes, e.g. an export's test split: RUN/exports/parquet/test.",
            rich_help_panel=DATA,
        ),
    ] = None
    eval_fraction: Annotated[
        float | None,
        typer.Option(
            "--eval-fraction",
            metavar="F",
            help="Or hold this share of --data out (seeded by --seed) for the eval loss.",
            rich_help_panel=DATA,
        ),
    ] = None

    def overrides(self) -> dict[str, Any]:
        output = str(self.output) if self.output else None
        return {"data": self.data, "model": self.model, "output": output, "method": self.method,
                "eval_data": self.eval_data, "eval_fraction": self.eval_fraction}  # fmt: skip


@dataclass(kw_only=True)
class TrainRecipe(OptionGroup):
    """The recipe; each option given wins over --set, --config and --preset."""

    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            metavar="NAME",
            help=presets_help(),
            rich_help_panel=RECIPE,
        ),
    ] = None
    finetune: Annotated[
        str | None,
        typer.Option(
            "--finetune",
            help="auto (QLoRA with CUDA+bitsandbytes, else LoRA), qlora, lora or full.",
            rich_help_panel=RECIPE,
        ),
    ] = None
    qlora: Annotated[
        bool,
        typer.Option("--qlora", help="Shorthand for --finetune qlora.", rich_help_panel=RECIPE),
    ] = False
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="auto (bf16 on a capable GPU, else fp32), bf16, fp16 or fp32.",
            rich_help_panel=RECIPE,
        ),
    ] = None
    epochs: Annotated[
        float | None,
        typer.Option(
            "--epochs", help=f"Epochs ({_default('num_train_epochs')}).", rich_help_panel=RECIPE
        ),
    ] = None
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", help="Stop after N optimiser steps.", rich_help_panel=RECIPE),
    ] = None
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", help=f"Learning rate ({_default('learning_rate')}).", rich_help_panel=RECIPE
        ),
    ] = None
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help=f"Per-device batch ({_default('per_device_train_batch_size')}).",
            rich_help_panel=RECIPE,
        ),
    ] = None
    grad_accum: Annotated[
        int | None,
        typer.Option(
            "--grad-accum",
            help=f"Gradient accumulation ({_default('gradient_accumulation_steps')}).",
            rich_help_panel=RECIPE,
        ),
    ] = None
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            help=f"Max tokens per record ({_default('max_length')}).",
            rich_help_panel=RECIPE,
        ),
    ] = None
    lora_r: Annotated[
        int | None,
        typer.Option("--lora-r", help=f"LoRA rank ({_default('lora_r')}).", rich_help_panel=RECIPE),
    ] = None
    lora_alpha: Annotated[
        int | None,
        typer.Option(
            "--lora-alpha", help=f"LoRA alpha ({_default('lora_alpha')}).", rich_help_panel=RECIPE
        ),
    ] = None
    lora_dropout: Annotated[
        float | None,
        typer.Option(
            "--lora-dropout",
            help=f"LoRA dropout ({_default('lora_dropout')}).",
            rich_help_panel=RECIPE,
        ),
    ] = None
    beta: Annotated[
        float | None,
        typer.Option("--beta", help=f"DPO beta ({_default('beta')}).", rich_help_panel=RECIPE),
    ] = None
    seed: Annotated[int | None, typer.Option("--seed", rich_help_panel=RECIPE)] = None

    def overrides(self) -> dict[str, Any]:
        """The recipe's options as TrainConfig fields (None: not given)."""
        finetune = self.finetune
        if self.qlora:
            if finetune not in (None, "qlora"):
                raise MatrixAlignError("--qlora contradicts --finetune " + str(finetune))
            finetune = "qlora"
        return {
            "preset": self.preset, "finetune": finetune, "precision": self.precision,
            "num_train_epochs": self.epochs, "max_steps": self.max_steps,
            "learning_rate": self.lr, "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.grad_accum, "max_length": self.max_length,
            "lora_r": self.lora_r, "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout, "beta": self.beta, "seed": self.seed,
        }  # fmt: skip


@dataclass(kw_only=True)
class TrainRun(OptionGroup):
    """How the run goes, and what happens after it."""

    merge: Annotated[
        bool | None,
        typer.Option(
            "--merge/--no-merge",
            help="Also write base+adapter merged into OUTPUT/merged.",
            rich_help_panel=RUN,
        ),
    ] = None
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any other setting, KEY=VALUE (repeatable): e.g. --set lora_target_modules="
            "[q_proj,v_proj] or --set trainer_args.report_to=wandb.",
            rich_help_panel=RUN,
        ),
    ] = None
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue from the last checkpoint in OUTPUT.", rich_help_panel=RUN
        ),
    ] = False
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a model already in OUTPUT.", rich_help_panel=RUN),
    ] = False
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check data, model and options, print the trainer settings, and stop.",
            rich_help_panel=RUN,
        ),
    ] = False
    accelerate_config: Annotated[
        str | None,
        typer.Option(
            "--accelerate-config",
            metavar="NAME",
            callback=_print_accelerate_config,
            is_eager=True,  # answered before the training options are checked
            help="Print the path of a shipped `accelerate launch` config and exit: ddp, "
            "deepspeed_zero2, deepspeed_zero3 or fsdp. Use it as "
            '`accelerate launch --config_file "$(matrix-align train --accelerate-config fsdp)" '
            "-m matrix_align train ...` (see docs/train.md).",
            rich_help_panel=RUN,
        ),
    ] = None
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            metavar="OWNER/NAME",
            help="Then push the merged model (with --merge) or else the adapter, with the "
            "model card, to this Hugging Face model repository (checked before training).",
            rich_help_panel=RUN,
        ),
    ] = None
    private: Annotated[
        bool,
        typer.Option(
            "--private",
            help="With --push-to-hub: make a new repository private.",
            rich_help_panel=RUN,
        ),
    ] = False


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file of training settings; options here win."),
]


def overrides(data: TrainData, recipe: TrainRecipe, run: TrainRun) -> dict[str, Any]:
    """What the command line sets, over --config and --preset: --set, then the options given
    (an option not given leaves a --set value alone)."""
    from matrix_align.train.config import parse_set_options

    given = {**data.overrides(), **recipe.overrides(), "merge": run.merge}
    values = parse_set_options(run.set_ or [])
    values.update({key: value for key, value in given.items() if value is not None})
    return values
