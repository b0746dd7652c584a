"""Datasets on the Hugging Face Hub as inputs, as TRL's ``--dataset_name`` takes them:
``generate --input hf://OWNER/NAME`` and ``train --data OWNER/NAME`` (or ``hf://...``), so an
export pushed with ``export --push-to-hub`` is trained on by its id.

Spelling: ``hf://OWNER/NAME[:CONFIG][@SPLIT]``; the split defaults to ``train`` and the
config to the one the dataset card marks default. ``datasets.load_dataset`` loads and caches
it, so a dataset loaded once loads again with ``HF_HUB_OFFLINE=1``; one that is not in the
cache then is refused with one error that says so, as is any other failure to load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

PREFIX = "hf://"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubDataset:
    repo: str
    config: str | None = None
    split: str = "train"

    def __str__(self) -> str:
        config = f":{self.config}" if self.config else ""
        return f"{PREFIX}{self.repo}{config}@{self.split}"


def parse_hub_spec(spec: str | Path, *, bare: bool = False) -> HubDataset | None:
    """The Hub dataset ``spec`` names, or None when it names none: ``hf://`` specs always,
    and with ``bare`` an ``OWNER/NAME[...]`` that is not a local path. A malformed id
    after ``hf://`` is an error."""
    text = str(spec)
    # A Path option collapses the double slash: typer hands over "hf:/OWNER/NAME".
    prefix = next((p for p in (PREFIX, "hf:/") if text.startswith(p)), None)
    if prefix is None and not (bare and not Path(text).expanduser().exists()):
        return None
    body, _, split = text[len(prefix or "") :].partition("@")
    repo, _, config = body.partition(":")
    if not _REPO_ID.match(repo):
        if prefix is None:
            return None  # a local path that does not exist: the caller says so
        raise MatrixAlignError(
            f"{text!r} does not name a Hub dataset.",
            hint="write hf://OWNER/NAME, optionally :CONFIG and @SPLIT, e.g. "
            "hf://me/matrix-data@train",
        )
    return HubDataset(repo, config or None, split or "train")


def _offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _failed(what: str, exc: Exception) -> MatrixAlignError:
    if _offline():
        return MatrixAlignError(
            f"{what} is not in the local Hugging Face cache, and HF_HUB_OFFLINE is set, so "
            "it cannot be downloaded.",
            hint="unset HF_HUB_OFFLINE (and HF_DATASETS_OFFLINE) where the Hub is reachable, "
            "or download it once beforehand; or pass a local file",
        )
    return MatrixAlignError(
        f"{what} could not be loaded from the Hugging Face Hub: {str(exc)[:300]}",
        hint="check the id (OWNER/NAME), the split and config, the network, and HF_TOKEN "
        "for a private dataset",
    )


def config_names(dataset: HubDataset) -> list[str]:
    """The dataset's configs, the card's default first ([] when it declares none)."""
    import datasets

    try:
        names = list(datasets.get_dataset_config_names(dataset.repo))
        default = datasets.get_dataset_default_config_name(dataset.repo)
    except Exception as exc:  # offline, not found, private: the library's own words
        raise _failed(f"Hub dataset {dataset.repo}", exc) from None
    if default in names:
        names.remove(default)
        names.insert(0, default)
    return [] if names == ["default"] else names


def load_hub_dataset(dataset: HubDataset, config: str | None = None) -> Any:
    """One split of a Hub dataset as a ``datasets.Dataset``."""
    import datasets

    chosen = config or dataset.config
    try:
        return datasets.load_dataset(dataset.repo, chosen, split=dataset.split)
    except Exception as exc:  # offline, not found, no such split or config
        raise _failed(
            f"Hub dataset {HubDataset(dataset.repo, chosen, dataset.split)}", exc
        ) from None
