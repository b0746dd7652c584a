"""The state file of a sweep folder (``sweep.json``: each cell's settings fingerprint and
whether it finished), read by the sweep that resumes and by its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SWEEP_FILE = "sweep.json"


def read_state(output: Path) -> dict[str, Any]:
    path = Path(output) / SWEEP_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):  # absent or damaged: every cell is checked item by item
        return {}
    return data if isinstance(data, dict) else {}
