"""Run folders: the one home of each output folder's format.

A ``generate`` folder and an ``evaluate`` folder are each a set of files with fixed names
(below); their record types and readers are in this package's modules, which ``data``,
``evaluate`` and ``view`` all import:

- ``store``: the append-only JSONL files keyed by id, and the folder lock;
- ``records``: what both kinds share: the query (``SourceRecord``), a failure
  (``ErrorRecord``), the stable ids;
- ``samples``: a ``generate`` folder's ``samples.jsonl`` line (``SampleRecord``);
- ``results``: an ``evaluate`` folder's ``results.jsonl`` lines (answers and judgements).

``generate`` and ``evaluate`` both write ``run.json`` and ``summary.json``, so a command
pointed at the other's folder would overwrite them; each command refuses the other kind
(``require_kind``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from matrix_align.errors import MatrixAlignError

Kind = Literal["generate", "evaluate"]
SAMPLES = "samples.jsonl"  # only a generate folder has it
RESULTS = "results.jsonl"  # only an evaluate folder has these two
REPORT = "report.md"
# Both kinds:
ERRORS = "errors.jsonl"  # the work items that failed, with their reason (retried next run)
RUN = "run.json"  # the folder's settings and provenance
SUMMARY = "summary.json"  # what the latest run did
# The rest of an evaluate folder (with report.md):
ANSWERS = "answers.md"  # every answer side by side, with its verdicts
METRICS_JSON = "metrics.json"  # every figure of the report, with its n and interval
PLOTS = "plots"  # the report's bar plots (PNG)


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


def read_run(output: Path) -> dict[str, Any]:
    """A folder's ``run.json``, or {} when it is missing or unreadable (not UTF-8, not JSON,
    not an object): the caller starts it afresh."""
    path = Path(output) / RUN
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
