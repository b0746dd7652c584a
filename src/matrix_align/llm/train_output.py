"""The layout of a ``matrix-align train`` output folder, read by the ``transformers`` backend
and written by ``train`` (train/run.py):

    adapter/            LoRA/QLoRA adapter + tokenizer (PEFT format)
    model/              full fine-tuning only: the whole model + tokenizer
    merged/             with --merge: base + adapter merged into one plain model folder
    train_config.yaml   the resolved settings, ``model`` naming the base model
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

MANIFEST = "train_config.yaml"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
MERGED_DIR = "merged"
WEIGHT_DIRS = (ADAPTER_DIR, MODEL_DIR, MERGED_DIR)


def read_train_manifest(folder: Path) -> dict[str, Any] | None:
    """The ``train_config.yaml`` that ``matrix-align train`` writes, if ``folder`` is one."""
    import yaml

    file = folder / MANIFEST
    if not file.exists():
        return None
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def adapter_base(adapter_dir: Path) -> str | None:
    """The base model an adapter was trained on, as PEFT recorded it."""
    file = adapter_dir / "adapter_config.json"
    if not file.exists():
        return None
    return json.loads(file.read_text(encoding="utf-8")).get("base_model_name_or_path")


def training_output_weights(spec: str, adapter: str | None = None) -> tuple[str, str | None]:
    """(base model spec, adapter folder or None) to load for ``spec``: for a training output
    folder, its merged or full model when there is one, else the base model its manifest
    names plus its adapter; anything else is returned as given."""
    folder = Path(spec).expanduser()
    if adapter or not folder.is_dir():
        return spec, adapter
    manifest = read_train_manifest(folder)
    if manifest is None:
        if (folder / "adapter_config.json").exists():
            raise MatrixAlignError(
                f"{folder} is a LoRA adapter without its base model.",
                hint="pass the base with --model and the adapter separately, or the whole "
                "training output folder",
            )
        return spec, None
    for sub in (MERGED_DIR, MODEL_DIR):
        if (folder / sub / "config.json").exists():
            return str(folder / sub), None
    if (folder / ADAPTER_DIR / "adapter_config.json").exists() and manifest.get("model"):
        return str(manifest["model"]), str(folder / ADAPTER_DIR)
    raise MatrixAlignError(
        f"{folder} is a training output without weights (no adapter/, model/ or merged/).",
        hint="did the training run finish?",
    )
