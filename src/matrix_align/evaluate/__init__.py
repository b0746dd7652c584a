"""``matrix-align evaluate``: the paper's benchmarks, baselines and judges.

Public API (imported lazily, so ``import matrix_align.evaluate`` stays light):

- ``SYSTEMS``, ``respond``, ``respond_full``, ``SystemOptions``: the systems under test
  (vanilla, matrix and the inference-time baselines), from ``matrix_align.systems``;
- ``Judge``, ``detect_refusal``, ``agreement``: the judges;
- ``BENCHMARKS``: the benchmarks and their default metrics;
- ``evaluate``, ``rejudge``, ``EvalSettings``, ``JudgeSpec``: a whole run;
- ``write_report``: rebuild the report of an evaluation folder.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SYSTEMS": "matrix_align.systems",
    "SystemOptions": "matrix_align.systems",
    "SystemResponse": "matrix_align.systems",
    "respond": "matrix_align.systems",
    "respond_full": "matrix_align.systems",
    "Judge": "matrix_align.evaluate.judges",
    "Verdict": "matrix_align.folders.results",
    "agreement": "matrix_align.evaluate.judges",
    "cohen_kappa": "matrix_align.evaluate.judges",
    "detect_refusal": "matrix_align.evaluate.judges",
    "BENCHMARKS": "matrix_align.evaluate.benchmarks",
    "EvalSettings": "matrix_align.evaluate.runner",
    "JudgeSpec": "matrix_align.evaluate.runner",
    "evaluate": "matrix_align.evaluate.runner",
    "rejudge": "matrix_align.evaluate.runner",
    "write_report": "matrix_align.evaluate.report",
    "compute_tables": "matrix_align.evaluate.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(module), name)
