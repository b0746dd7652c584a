"""The layout of a ``matrix-align train`` output folder, read by the ``transformers`` backend
and written by ``train`` (train/run.py):

    adapter/            LoRA/QLoRA adapter + tokenizer (PEFT format)
    model/              full fine-tuning only: the whole model + tokenizer
    merged/             with --merge: base + adapter merged into one plain model folder, with
                        merged_from.json naming the adapter it was made from
    train_config.yaml   the resolved settings, ``model`` naming the base model
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

MANIFEST = "train_config.yaml"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
MERGED_DIR = "merged"
WEIGHT_DIRS = (ADAPTER_DIR, MODEL_DIR, MERGED_DIR)
# In merged/: the fingerprint of the adapter the merge was made from. A rerun that replaces
# the adapter without --merge (or dies before merging) would otherwise leave old weights
# in merged/, which loading prefers; the record lets loading tell and refuse.
MERGE_RECORD = "merged_from.json"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def read_train_manifest(folder: Path) -> dict[str, Any] | None:
    """The ``train_config.yaml`` that ``matrix-align train`` writes, if ``folder`` is one."""
    import yaml

    file = folder / MANIFEST
    if not file.exists():
        return None
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def adapter_fingerprint(adapter_dir: Path) -> str:
    """sha256 over the adapter's config and weights: what changes whenever training does."""
    digest = hashlib.sha256()
    for name in _ADAPTER_FILES:
        file = adapter_dir / name
        if file.is_file():
            digest.update(name.encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def record_merge(merged_dir: Path, adapter_dir: Path) -> None:
    """Note in ``merged_dir`` which adapter it was made from (written last, after the
    weights, so a merge cut short has no record and is refused like a stale one)."""
    record = {"adapter": ADAPTER_DIR, "adapter_sha256": adapter_fingerprint(adapter_dir)}
    (merged_dir / MERGE_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")


def check_merged_current(folder: Path) -> None:
    """Refuse ``folder/merged`` when it was not made from ``folder/adapter`` as it is now."""
    adapter_dir = folder / ADAPTER_DIR
    if not (adapter_dir / "adapter_config.json").exists():
        return  # a merged model shipped without its adapter: nothing to compare
    merged_dir = folder / MERGED_DIR
    try:
        recorded = json.loads((merged_dir / MERGE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if not isinstance(recorded, dict) or recorded.get("adapter_sha256") != adapter_fingerprint(
        adapter_dir
    ):
        raise MatrixAlignError(
            f"{merged_dir} was not made from the adapter in {adapter_dir}: the adapter was "
            "retrained after the merge (or the merge did not finish), so merged/ holds "
            "stale weights.",
            hint=f"delete {merged_dir} to load the base model with the adapter, or rerun "
            "`matrix-align train` with --merge to rebuild it",
        )


def training_output_weights(spec: str, adapter: str | None = None) -> tuple[str, str | None]:
    """(base model spec, adapter folder or None) to load for ``spec``: for a training output
    folder, its merged model (refused when stale) or full model when there is one, else
    the base model its manifest names plus its adapter; anything else is returned as
    given."""
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
    if (folder / MERGED_DIR / "config.json").exists():
        check_merged_current(folder)
        return str(folder / MERGED_DIR), None
    if (folder / MODEL_DIR / "config.json").exists():
        return str(folder / MODEL_DIR), None
    if (folder / ADAPTER_DIR / "adapter_config.json").exists() and manifest.get("model"):
        return str(manifest["model"]), str(folder / ADAPTER_DIR)
    raise MatrixAlignError(
        f"{folder} is a training output without weights (no adapter/, model/ or merged/).",
        hint="did the training run finish?",
    )
