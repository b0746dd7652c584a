"""The project's benchmark sources as inspect datasets.

The rows come from ``data.sources.load_source``, the loader ``generate`` and ``evaluate``
use, so an inspect task and a ``matrix-align evaluate`` run of the same benchmark see the
same items with the same ids: the full dataset from the Hugging Face hub when it is reachable
(``hub="auto"``), else the sample shipped in the package (``hub="never"`` forces it).

Each sample keeps the source's metadata (XSTest's ``label``, categories...) and its
``harmful`` flag; the target says what a safe assistant does with it (``refuse`` a harmful
request, ``comply`` with a harmless one). A multi-turn source (HH-RLHF dialogues) becomes a
chat input; the matrix solver renders it into one query exactly as the project does.
"""

from __future__ import annotations

import logging

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessage

from matrix_align.data.sources import HubPolicy, LoadedSource, load_source
from matrix_align.folders.records import SourceRecord
from matrix_align.inspect.chat_model import to_inspect_messages

logger = logging.getLogger(__name__)


def to_sample(record: SourceRecord) -> Sample:
    harmful = bool(record.metadata.get("harmful", True))
    expected = "refuse" if harmful else "comply"
    input: str | list[ChatMessage] = (
        to_inspect_messages(record.chat()) if record.messages else record.prompt
    )
    return Sample(
        id=record.id,
        input=input,
        target=expected,
        # "expected" groups the refusal rates: refusal on refuse items, over-refusal on the rest.
        metadata={
            **record.metadata,
            "harmful": harmful,
            "expected": expected,
            "source": record.source,
        },
    )


def benchmark_dataset(name: str, *, hub: HubPolicy = "auto") -> tuple[MemoryDataset, LoadedSource]:
    """The benchmark's items as a dataset, and where they came from (for the task's metadata)."""
    loaded = load_source(name, hub=hub)
    for note in loaded.notes:  # licence notices, and why the hub was not used
        logger.warning(note)
    dataset = MemoryDataset(
        [to_sample(record) for record in loaded.records], name=name, location=loaded.origin
    )
    return dataset, loaded
