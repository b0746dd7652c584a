"""``matrix-align train``: fine-tune a model on MATRIX data (SFT or DPO, LoRA/QLoRA or full).

torch, transformers, trl and peft are imported inside the command, so ``matrix-align --help``
stays fast and works without the [train] extra. Its options are in ``train_options``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from matrix_align.cli.option_groups import with_option_groups
from matrix_align.cli.train_options import ConfigFile, TrainData, TrainRecipe, TrainRun, overrides


@with_option_groups
def train(
    data: TrainData,
    config_file: ConfigFile = None,
    *,
    recipe: TrainRecipe,
    run: TrainRun,
) -> None:
    """Fine-tune MODEL on MATRIX data so it answers consequence-aware without simulating.

    The defaults are the paper's recipe: LoRA r=8 (QLoRA 4-bit on a CUDA GPU), alpha 16,
    dropout 0.05, lr 2e-5, 3 epochs, batch 1 x accumulation 8, cosine schedule, warmup 0.03,
    max length 1024; the loss covers the assistant answer only. `--preset paper-7b|paper-13b|
    paper-30b` is the authors' exact setting for one model size (QLoRA on q_proj,v_proj, the
    Vicuna template, that size's base model). Runs on a laptop CPU, one GPU, or many with
    `accelerate launch` (see docs/train.md).
    """
    from rich.console import Console

    from matrix_align.extras import TRAIN_HINT, TRAIN_MODULES, require_modules
    from matrix_align.train.config import TrainConfig

    console = Console(stderr=True)
    cfg = TrainConfig.load(config_file, overrides(data, recipe, run))
    require_modules(TRAIN_MODULES, "Training", TRAIN_HINT)
    from matrix_align.hub import check_push_options

    check_push_options(run.push_to_hub, private=run.private)  # before an hour of training

    def log(message: str) -> None:
        console.print(f"[dim]train:[/] {escape(message)}", highlight=False)

    _log_preset(cfg, log)
    if run.dry_run:
        from matrix_align.train.run import prepare

        _print_plan(console, cfg, prepare(cfg, overwrite=run.overwrite, resume=run.resume, log=log))
        return
    from matrix_align.train.run import run_training

    result = run_training(cfg, overwrite=run.overwrite, resume=run.resume, log=log)
    if not result.is_main_process:
        return  # under accelerate/torchrun only the main process reports
    _print_done(console, result)
    if run.push_to_hub is not None:
        from matrix_align.hub import push_model

        weights = result.merged_dir or result.weights_dir
        url = push_model(result.output_dir, Path(weights), run.push_to_hub, private=run.private)
        console.print(f"pushed {Path(weights).name} and the model card to {url}", highlight=False)


def _log_preset(cfg: Any, log: Any) -> None:
    if cfg.preset is not None:
        from matrix_align.train.presets import get_preset, launcher_note

        log(f"preset {cfg.preset}: the paper's recipe; options given explicitly win")
        note = launcher_note(get_preset(cfg.preset), cfg.trainer_args)
        if note:
            log(note)


def _print_plan(console: Any, cfg: Any, prep: Any) -> None:
    """--dry-run: what would be trained, how, and the trainer's settings."""
    console.print(
        f"[bold]{cfg.method.upper()}[/] {prep.finetune} / {prep.precision} on "
        f"{prep.env.device_name}; {prep.data.n_train} records from {prep.data.where}",
        highlight=False,
    )
    template = cfg.chat_template or "the tokenizer's own"
    if prep.finetune != "full":
        console.print(
            f"  LoRA r={cfg.lora_r}, alpha={cfg.lora_alpha}, dropout={cfg.lora_dropout}, "
            f"targets {cfg.lora_target_modules!r}; chat template: {template}",
            highlight=False,
        )
    for key, value in prep.trainer_kwargs.items():
        console.print(f"  {key} = {value!r}", highlight=False)


def _print_done(console: Any, result: Any) -> None:
    if result.first_loss is not None and result.final_loss is not None:
        loss = f"loss {result.first_loss:.4f} -> {result.final_loss:.4f}"
    else:
        loss = "no loss logged"
    if result.final_eval_loss is not None:
        loss += f", eval loss {result.first_eval_loss:.4f} -> {result.final_eval_loss:.4f}"
    console.print(
        f"[green]done[/]: {result.steps} steps in {result.runtime_s:.0f} s, {loss}\n"
        f"  weights: {result.weights_dir}\n"
        + (f"  merged:  {result.merged_dir}\n" if result.merged_dir else "")
        + f"  card:    {result.output_dir / 'README.md'}\n"
        f"  use it:  matrix-align simulate --backend transformers --model {result.output_dir}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    from matrix_align.errors import EXIT_CODES_HELP

    app.command("train", epilog=EXIT_CODES_HELP)(train)
