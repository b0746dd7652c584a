"""Rewrite the shipped evaluation subsets (src/matrix_align/evaluate/subset_manifests/) from
their definitions in matrix_align.evaluate.subsets. Run after a definition or a shipped
sample changes; tests/evaluate/test_subsets.py fails until the files match again.

    python scripts/make_subsets.py
"""

from __future__ import annotations

import os

from matrix_align.evaluate.subsets import DEFINITIONS, MANIFEST_DIR, build_manifest
from matrix_align.io import atomic_write_json


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the shipped samples only
    for definition in DEFINITIONS:
        path = atomic_write_json(
            MANIFEST_DIR / f"{definition.name}.json", build_manifest(definition)
        )
        print(path)


if __name__ == "__main__":
    main()
