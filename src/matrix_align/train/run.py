"""One training run, start to finish: check, load, train, save, describe.

Order matters for the user: everything that can be checked without reading weights (options
against the machine, the data's columns, the model path, the tokenizer) is checked first, so
a mistake costs seconds, not a model load. Under ``accelerate launch`` every process runs this
same function; only the main process writes the card, plots and merged model.

Output folder layout (its names are llm/train_output.py's, which the transformers backend
reads):
    adapter/            LoRA/QLoRA adapter + tokenizer (PEFT format; vLLM --enable-lora reads it)
    model/              full fine-tuning only: the whole model + tokenizer
    merged/             with --merge: base + adapter merged into one plain model folder
    checkpoints/        trainer checkpoints (resume with --resume)
    train_config.yaml   resolved settings;  metrics.json, loss_curve.{json,png};  README.md card
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.data.export import find_export_provenance
from matrix_align.errors import MatrixAlignError
from matrix_align.llm.hf_models import (
    ModelSource,
    ensure_hf_folder,
    load_causal_lm,
    load_tokenizer,
    resolve_model_source,
)
from matrix_align.llm.model_files import bundled_short_name
from matrix_align.llm.train_output import (
    ADAPTER_DIR,
    MANIFEST,
    MERGED_DIR,
    MODEL_DIR,
    WEIGHT_DIRS,
    record_merge,
)
from matrix_align.provenance import provenance_record
from matrix_align.train.card import CardFacts, base_model_id, write_card
from matrix_align.train.config import Environment, TrainConfig, check_trackers
from matrix_align.train.data import TrainData, load_train_data
from matrix_align.train.models import read_chat_template
from matrix_align.train.plots import eval_points, loss_points, write_loss_curve

Log = Callable[[str], None]


@dataclass
class TrainPlan:
    """Everything decided before any weights are read."""

    cfg: TrainConfig
    env: Environment
    finetune: str
    precision: str
    data: TrainData
    source: ModelSource
    tokenizer: Any
    output_dir: Path
    trainer_kwargs: dict[str, Any]
    eval_data: TrainData | None = None  # what the eval loss is measured on, if anything


@dataclass
class TrainResult:
    output_dir: Path
    weights_dir: Path
    merged_dir: Path | None
    steps: int
    first_loss: float | None
    final_loss: float | None
    runtime_s: float
    loss_curve_png: Path | None
    is_main_process: bool = True
    gguf_adapter: Path | None = None
    first_eval_loss: float | None = None
    final_eval_loss: float | None = None


def prepare(
    cfg: TrainConfig,
    *,
    env: Environment | None = None,
    overwrite: bool = False,
    resume: bool = False,
    log: Log = print,
) -> TrainPlan:
    """Check the run up front: options vs machine, data, model path, tokenizer, output."""
    for name in ("data", "model", "output"):
        if not getattr(cfg, name):
            raise MatrixAlignError(
                f"Training needs --{name}.", hint="see `matrix-align train --help`"
            )
    env = env or Environment.detect()
    finetune = cfg.resolve_finetune(env)
    precision = cfg.resolve_precision(env)
    output_dir = Path(str(cfg.output)).expanduser()
    if not (overwrite or resume) and any((output_dir / sub).exists() for sub in WEIGHT_DIRS):
        raise MatrixAlignError(
            f"{output_dir} already holds a trained model.",
            hint="pass --overwrite to replace it, --resume to continue, or another --output",
        )
    data = load_train_data(str(cfg.data), cfg.method)
    log(
        f"data: {data.n_train} {cfg.method} records from {data.where}"
        + (f" ({data.n_dropped} dropped)" if data.n_dropped else "")
    )
    eval_data = _eval_data(cfg, data, log)
    source = resolve_model_source(str(cfg.model))
    tokenizer = load_tokenizer(source)
    if cfg.chat_template:
        # Saved with the adapter, so generation later uses the template training used.
        tokenizer.chat_template = read_chat_template(cfg.chat_template)
    if not tokenizer.chat_template:
        raise MatrixAlignError(
            f"The tokenizer of {cfg.model!r} has no chat template.",
            hint="give one with --set chat_template=vicuna (bundled) or a .jinja file",
        )
    check_trackers(cfg.trainer_args)
    from matrix_align.train.trainer import trainer_config

    trainer_config(cfg, env, output_dir / "checkpoints")  # TRL's own checks, before a load
    kwargs = cfg.trainer_kwargs(env, output_dir / "checkpoints")
    return TrainPlan(
        cfg, env, finetune, precision, data, source, tokenizer, output_dir, kwargs, eval_data
    )


def _eval_data(cfg: TrainConfig, data: TrainData, log: Log) -> TrainData | None:
    """The records the eval loss is measured on: ``eval_data`` read as ``--data`` is, or a
    seeded ``eval_fraction`` of the training records (taken out of them)."""
    if cfg.eval_data:
        held = load_train_data(str(cfg.eval_data), cfg.method)
        log(f"eval data: {held.n_train} records from {held.where}")
        return held
    if not cfg.eval_fraction:
        return None
    n_eval = max(1, round(cfg.eval_fraction * data.n_train))
    if data.n_train - n_eval < 1:
        raise MatrixAlignError(
            f"--eval-fraction {cfg.eval_fraction:g} leaves no training records of {data.n_train}.",
            hint="use a smaller fraction, more data, or --eval-data",
        )
    split = data.dataset.train_test_split(test_size=n_eval, seed=cfg.seed)
    data.dataset = split["train"]
    log(f"eval data: {n_eval} of the records held out (--eval-fraction {cfg.eval_fraction:g})")
    return TrainData(split["test"], data.path, data.columns_read, n_eval, hub=data.hub)


def run_training(
    cfg: TrainConfig,
    *,
    env: Environment | None = None,
    overwrite: bool = False,
    resume: bool = False,
    log: Log = print,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data`` into ``cfg.output``; see the module doc for files."""
    prep = prepare(cfg, env=env, overwrite=overwrite, resume=resume, log=log)
    source = ensure_hf_folder(prep.source, log=log)
    log(f"model: {source.path} ({prep.finetune}, {prep.precision}, {prep.env.device_name})")
    model = load_causal_lm(source, precision=prep.precision, quantize_4bit=prep.finetune == "qlora")
    peft_config = None
    if prep.finetune in ("lora", "qlora"):
        from peft import LoraConfig

        if prep.finetune == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=cfg.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )
    from matrix_align.train.trainer import build_trainer

    trainer = build_trainer(
        cfg,
        prep.env,
        model=model,
        tokenizer=prep.tokenizer,
        dataset=prep.data.dataset,
        output_dir=prep.output_dir / "checkpoints",
        peft_config=peft_config,
        eval_dataset=prep.eval_data.dataset if prep.eval_data else None,
    )
    checkpoint = _last_checkpoint(prep.output_dir / "checkpoints") if resume else None
    if resume and checkpoint is None:
        log("resume: no checkpoint found, starting from the beginning")
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    runtime = time.perf_counter() - started

    weights_dir = prep.output_dir / (MODEL_DIR if prep.finetune == "full" else ADAPTER_DIR)
    trainer.save_model(str(weights_dir))  # every rank: ZeRO-3 gathers the shards here
    points = loss_points(trainer.state.log_history)
    losses = [p["loss"] for p in points]
    result = TrainResult(
        output_dir=prep.output_dir,
        weights_dir=weights_dir,
        merged_dir=None,
        steps=int(trainer.state.global_step),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        runtime_s=runtime,
        loss_curve_png=None,
    )
    evals = [p["eval_loss"] for p in eval_points(trainer.state.log_history)]
    if evals:
        result.first_eval_loss, result.final_eval_loss = evals[0], evals[-1]
        log(f"eval loss: {evals[0]:.4f} -> {evals[-1]:.4f} ({len(evals)} evaluations)")
    if not trainer.is_world_process_zero():
        result.is_main_process = False
        return result

    prep.tokenizer.save_pretrained(str(weights_dir))
    _drop_stale_merged(prep.output_dir / MERGED_DIR, log)
    if prep.finetune != "full":
        result.gguf_adapter = _write_gguf_adapter(weights_dir, source, prep.source, log)
    # The trainer pickles its arguments beside the weights; train_config.yaml says the same
    # in plain text, and a shipped model folder should hold no pickle.
    (weights_dir / "training_args.bin").unlink(missing_ok=True)
    resolved = cfg.model_copy(
        update={"model": source.path if prep.source.kind == "gguf" else cfg.model}
    )
    (prep.output_dir / MANIFEST).write_text(resolved.to_yaml(), encoding="utf-8")
    _write_metrics(prep, result, train_output, trainer.state.log_history)
    _, result.loss_curve_png = write_loss_curve(
        trainer.state.log_history, prep.output_dir, title=f"{cfg.method.upper()} loss"
    )
    world = int(getattr(trainer.args, "world_size", 1) or 1)
    del trainer, model
    gc.collect()
    if cfg.merge and prep.finetune != "full":
        result.merged_dir = merge_adapter(
            source, weights_dir, prep.output_dir / MERGED_DIR, prep.precision, prep.tokenizer, log
        )
    outputs = {weights_dir.name: "full model" if prep.finetune == "full" else "PEFT adapter"}
    if result.gguf_adapter:
        outputs[f"{weights_dir.name}/{result.gguf_adapter.name}"] = "LoRA adapter for llama.cpp"
    if result.merged_dir:
        outputs["merged"] = "base model with the adapter merged in"
    # The card names the model, never a local path (which a push would publish).
    model_id = base_model_id(prep.source)
    model_name = model_id or Path(source.path).name
    facts = CardFacts(
        base_model=model_name,
        base_model_id=model_id,
        datasets=[prep.data.path.as_posix()] if prep.data.hub else [],
        finetune=prep.finetune,
        precision=prep.precision,
        device=prep.env.device_name,
        steps=result.steps,
        runtime_s=runtime,
        final_loss=result.final_loss,
        first_loss=result.first_loss,
        first_eval_loss=result.first_eval_loss,
        final_eval_loss=result.final_eval_loss,
        eval_data=prep.eval_data,
        n_processes=world,
        outputs=outputs,
        folder=str(prep.output_dir),
        provenance=provenance_record(
            base_model=model_name,
            data=find_export_provenance(prep.data.path) if prep.data.hub is None else None,
        ),
    )
    write_card(prep.output_dir / "README.md", cfg, prep.data, facts)
    return result


def _write_gguf_adapter(
    adapter_dir: Path, source: ModelSource, given: ModelSource, log: Log
) -> Path | None:
    """The adapter as GGUF for llama.cpp (llm/lora.py), naming the base the embedded backend
    loads under it: the bundled model's short name, the GGUF file, or else the model as
    given. An architecture llama.cpp lacks leaves the PEFT adapter alone, with a note."""
    from matrix_align.llm.lora import ADAPTER_FILE
    from matrix_align.train.gguf_adapter import convert_adapter

    # A rerun into the same folder (--overwrite, --resume) never leaves an older one behind.
    (adapter_dir / ADAPTER_FILE).unlink(missing_ok=True)
    base = bundled_short_name(given.spec) or (
        str(given.gguf_path) if given.kind == "gguf" else given.spec
    )
    try:
        path = convert_adapter(adapter_dir, Path(source.path) / "config.json", base)
    except MatrixAlignError as error:
        log(f"no GGUF adapter: {error.message}")
        return None
    log(f"GGUF adapter for llama.cpp: {path}")
    return path


def merge_adapter(
    source: ModelSource,
    adapter_dir: Path,
    merged_dir: Path,
    precision: str,
    tokenizer: Any,
    log: Log = print,
) -> Path:
    """Base + adapter -> one plain model folder (for servers without LoRA support).

    The base is reloaded unquantised: merging into a 4-bit QLoRA base would round the update
    away, so the adapter is applied to the full-precision weights instead.
    """
    from peft import PeftModel

    log(f"merging the adapter into {merged_dir}")
    base = load_causal_lm(source, precision=precision if precision != "fp16" else "fp32")
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    record_merge(merged_dir, adapter_dir)
    return merged_dir


def _drop_stale_merged(merged_dir: Path, log: Log) -> None:
    """A merged model of an earlier run in this folder (--overwrite, --resume) was made from
    the adapter just replaced: remove it, so neither the transformers backend nor `vllm serve
    OUT/merged` serves old weights. --merge rebuilds it afterwards."""
    if merged_dir.exists():
        shutil.rmtree(merged_dir)
        log(f"removed {merged_dir}: it was merged from the previous adapter")


def _last_checkpoint(folder: Path) -> str | None:
    if not folder.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder))


def _write_metrics(prep: TrainPlan, result: TrainResult, train_output: Any, history: list) -> None:
    import json

    metrics = dict(getattr(train_output, "metrics", {}) or {})
    payload = {
        "method": prep.cfg.method,
        "finetune": prep.finetune,
        "precision": prep.precision,
        "device": prep.env.device_name,
        "steps": result.steps,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "runtime_s": round(result.runtime_s, 3),
        "n_train": prep.data.n_train,
        "n_dropped": prep.data.n_dropped,
        "n_eval": prep.eval_data.n_train if prep.eval_data else 0,
        "first_eval_loss": result.first_eval_loss,
        "final_eval_loss": result.final_eval_loss,
        "trainer_metrics": metrics,
        "log_history": history,
    }
    (prep.output_dir / "metrics.json").write_text(
        json.dumps(payload, indent=1, default=str), encoding="utf-8"
    )
