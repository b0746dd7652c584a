"""A short model card (README.md) beside the adapter: what was trained, on what, how.

A fine-tuned model without its data and settings is not reproducible; the card names both and
says how to use the result again (the transformers backend, or vLLM), in a few lines.

Its metadata is a ``huggingface_hub.ModelCardData``. ``base_model`` is a Hub id (the id
given, or the model a bundled GGUF quantises, or the one a local folder's config names) and
is left out otherwise: a local path means nothing on the Hub and would publish a directory
name of the machine that trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from matrix_align.llm.hf_models import ModelSource
from matrix_align.llm.model_files import bundled_model
from matrix_align.train.config import TrainConfig
from matrix_align.train.data import TrainData


@dataclass
class CardFacts:
    """What the run measured and decided, beyond the config itself."""

    base_model: str  # as the card shows it: the Hub id, else the local folder's name
    finetune: str
    precision: str
    device: str
    steps: int
    runtime_s: float
    final_loss: float | None
    first_loss: float | None
    n_processes: int = 1
    folder: str = "OUTPUT"
    outputs: dict[str, str] = field(default_factory=dict)
    # matrix_align.provenance of the training run, with the data's own (its export's
    # provenance.json) under "data" when it has one.
    provenance: dict[str, Any] = field(default_factory=dict)
    base_model_id: str | None = None  # the Hub id of the base model, when it has one
    datasets: list[str] = field(default_factory=list)  # Hub ids of the training data
    first_eval_loss: float | None = None
    final_eval_loss: float | None = None
    eval_data: TrainData | None = None  # what the eval loss was measured on


def _is_hub_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name and not Path(name).expanduser().exists()


def base_model_id(source: ModelSource) -> str | None:
    """The Hub id of the model ``source`` is, or None when it has none (see the module)."""
    if source.kind == "hub":
        return source.spec
    bundled = bundled_model(source.spec)
    if bundled is not None:
        return bundled.hub_id or None
    try:
        config = json.loads((Path(source.path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("_name_or_path") if isinstance(config, dict) else None
    return name if isinstance(name, str) and _is_hub_id(name) else None


def render_card(cfg: TrainConfig, data: TrainData, facts: CardFacts) -> str:
    """Markdown with a YAML header that the Hugging Face Hub understands."""
    from huggingface_hub import ModelCardData

    header = ModelCardData(
        base_model=facts.base_model_id,
        library_name="peft" if facts.finetune in ("lora", "qlora") else "transformers",
        pipeline_tag="text-generation",
        datasets=facts.datasets or None,
        tags=["matrix-align", "trl", cfg.method, "alignment"],
    )
    method = {
        "sft": "supervised fine-tuning on consequence-aware MATRIX answers (loss on the "
        "assistant completion only)",
        "dpo": "DPO on preference pairs (chosen = MATRIX answer, rejected = initial answer)",
    }[cfg.method]
    adapter = (
        f"LoRA r={cfg.lora_r}, alpha={cfg.lora_alpha}, dropout={cfg.lora_dropout}, "
        f"targets {cfg.lora_target_modules}"
        + (" on a 4-bit NF4 base (QLoRA)" if facts.finetune == "qlora" else "")
        if facts.finetune != "full"
        else "full fine-tuning (all weights)"
    )
    sources = ", ".join(f"{k}: {v}" for k, v in data.sources.most_common()) or "not recorded"
    dropped = (
        f"{data.n_dropped} dropped ({', '.join(f'{n} {w}' for w, n in data.drop_reasons.items())})"
        if data.n_dropped
        else "none dropped"
    )
    loss = (
        f"{facts.first_loss:.4f} -> {facts.final_loss:.4f}"
        if facts.first_loss is not None and facts.final_loss is not None
        else "not logged"
    )
    rows = [
        *([("preset", f"`{cfg.preset}` (the paper's recipe for that size)")] if cfg.preset else []),
        ("method", method),
        ("base model", f"`{facts.base_model}`"),
        ("adapter", adapter),
        ("data", f"`{data.where}`: {data.n_train} records used of {data.n_read} read, {dropped}"),
        ("data sources", sources),
        (
            "learning rate",
            f"{cfg.learning_rate} ({cfg.lr_scheduler_type}, warmup {cfg.warmup_ratio})",
        ),
        (
            "batch",
            f"{cfg.per_device_train_batch_size} per device x {cfg.gradient_accumulation_steps} "
            f"accumulation x {facts.n_processes} process(es)",
        ),
        ("length", f"max {cfg.max_length} tokens"),
        (
            "duration",
            f"{facts.steps} optimiser steps"
            + (
                f" (max_steps={cfg.max_steps})"
                if cfg.max_steps > 0
                else f", {cfg.num_train_epochs} epochs"
            )
            + f", {facts.runtime_s:.0f} s",
        ),
        ("precision / device", f"{facts.precision} on {facts.device}"),
        ("loss (first -> last logged)", loss),
    ]
    if facts.eval_data is not None:
        rows.append(("eval data", f"`{facts.eval_data.where}`: {facts.eval_data.n_train} records"))
        if facts.first_eval_loss is not None and facts.final_eval_loss is not None:
            shown = f"{facts.first_eval_loss:.4f} -> {facts.final_eval_loss:.4f}"
            rows.append(("eval loss (first -> last)", shown))
    if cfg.method == "dpo":
        rows.append(("DPO beta", str(cfg.beta)))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    outputs = "\n".join(f"- `{name}/`: {what}" for name, what in facts.outputs.items())
    serve_base = facts.base_model_id or "BASE_MODEL_FOLDER"
    return f"""---
{header.to_yaml()}
---

# MATRIX-aligned model ({cfg.method.upper()})

Trained with matrix-align, an implementation of MATRIX (self-alignment by social scene
simulation, ICML 2024, [arXiv 2402.05699](https://arxiv.org/abs/2402.05699)): {method}.
After this training the model is meant to answer in a consequence-aware way without
running the simulation.

| setting | value |
|---|---|
{table}

## Files
{outputs}
- `train_config.yaml`: the resolved settings (reuse with `matrix-align train --config`)
- `metrics.json`, `loss_curve.json`, `loss_curve.png`: the training log

{_provenance_section(facts.provenance)}
## Use it
```bash
# in-process, no server (slow on CPU, fine for a check):
matrix-align simulate "your question" --backend transformers --model {facts.folder}
# or serve with vLLM and use the openai backend (see docs/train.md):
vllm serve {serve_base} --enable-lora --lora-modules matrix={facts.folder}/adapter
```

Data and outputs of a MATRIX run can contain descriptions of harmful scenarios (the
simulated consequences); evaluate the model before any deployment.
"""


def _provenance_section(provenance: dict[str, Any]) -> str:
    """The run's provenance as a short list, then in full (YAML) for tools to read."""
    if not provenance:
        return ""
    libraries = ", ".join(f"{k} {v}" for k, v in (provenance.get("libraries") or {}).items())
    data = provenance.get("data") or {}
    generation = data.get("generation") or {}
    lines = [
        "## Provenance",
        "",
        f"- matrix-align {provenance.get('matrix_align')}, Python {provenance.get('python')}",
        f"- libraries: {libraries or 'not recorded'}",
        f"- command: `{provenance.get('command', '')}`",
    ]
    if generation:
        model = generation.get("model") or {}
        lines.append(
            f"- data generated by `{model.get('name', '?')}`"
            + (f" (sha256 {model['sha256']})" if model.get("sha256") else "")
            + f" with matrix-align {generation.get('matrix_align')}, prompt templates "
            f"{str(generation.get('prompt_templates_sha256', '?'))[:12]}: "
            f"`{generation.get('command', '')}`"
        )
    full = yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True).strip()
    return "\n".join([*lines, "", "```yaml", full, "```", ""])


def write_card(path: Path, cfg: TrainConfig, data: TrainData, facts: CardFacts) -> Path:
    path.write_text(render_card(cfg, data, facts), encoding="utf-8")
    return path
