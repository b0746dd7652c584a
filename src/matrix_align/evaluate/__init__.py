"""``matrix-align evaluate``: the paper's benchmarks, baselines and judges.

Public API (imported lazily, so ``import matrix_align.evaluate`` stays light):

- ``SYSTEMS``, ``respond``, ``respond_full``, ``SystemOptions``: the systems under test
  (vanilla, matrix and the inference-time baselines), usable by any command;
- ``Judge``, ``detect_refusal``, ``agreement``: the judges;
- ``BENCHMARKS``: the benchmarks and their default metrics;
- ``evaluate``, ``rejudge``, ``EvalSettings``, ``JudgeSpec``: a whole run;
- ``write_report``: rebuild the report of an evaluation folder.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SYSTEMS": "systems",
    "SystemOptions": "systems",
    "SystemResponse": "systems",
    "respond": "systems",
    "respond_full": "systems",
    "Judge": "judges",
    "Verdict": "judges",
    "agreement": "judges",
    "cohen_kappa": "judges",
    "detect_refusal": "judges",
    "BENCHMARKS": "benchmarks",
    "EvalSettings": "runner",
    "JudgeSpec": "runner",
    "evaluate": "runner",
    "rejudge": "runner",
    "write_report": "report",
    "compute_tables": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(f"matrix_align.evaluate.{module}"), name)
