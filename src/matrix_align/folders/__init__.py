"""The two kinds of output folder, told apart by the files that only one of them holds.

``generate`` and ``evaluate`` both write ``run.json`` and ``summary.json``, so a command
pointed at the other's folder would overwrite them; each command refuses the other kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from matrix_align.errors import MatrixAlignError

Kind = Literal["generate", "evaluate"]
SAMPLES = "samples.jsonl"  # only a generate folder has it
RESULTS = "results.jsonl"  # only an evaluate folder has these two
REPORT = "report.md"


def folder_kind(path: Path) -> Kind | None:
    """Which command wrote ``path``, or None (not a folder, or neither's)."""
    if not path.is_dir():
        return None
    if (path / SAMPLES).is_file():
        return "generate"
    if (path / RESULTS).is_file() or (path / REPORT).is_file():
        return "evaluate"
    return None


def require_kind(path: Path, kind: Kind, option: str) -> None:
    """Refuse to write ``kind`` output into a folder the other command wrote."""
    found = folder_kind(Path(path))
    if found is not None and found != kind:
        raise MatrixAlignError(
            f"{option} {path} is a `matrix-align {found}` output folder; `{kind}` would "
            "overwrite its run.json and summary.json.",
            hint=f"give {option} a new folder (or an earlier `{kind}` output to resume it)",
        )
