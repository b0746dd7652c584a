"""Datasets: query sources, ``generate`` runs, TRL exports, ``import``.

The records and the sample store are the run folder's format (``matrix_align.folders``), the
runner is the shared batch layer (``matrix_align.batch``); the names below are re-exported
from there for the callers of this package. ``sources`` is light to import; ``generate`` pulls
in the simulator and ``export`` pulls in pyarrow/datasets only when called.
"""

from matrix_align.data.sources import SOURCES, load_input_file, load_source, source_names
from matrix_align.folders.records import ErrorRecord, SourceRecord, sample_id
from matrix_align.folders.samples import SampleRecord
from matrix_align.folders.store import JsonlStore, read_jsonl

__all__ = [
    "SOURCES",
    "ErrorRecord",
    "JsonlStore",
    "SampleRecord",
    "SourceRecord",
    "load_input_file",
    "load_source",
    "read_jsonl",
    "sample_id",
    "source_names",
]
