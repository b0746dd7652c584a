"""The records of recent requests, by id: the newest ``max_records`` in memory (older ones
are dropped, so a long-running server does not grow without bound) and, with
``--trace-dir``, each finished one also written as ``<id>.json`` and read back from there
once it has left memory."""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from matrix_align.serve.record import ServeRecord

log = logging.getLogger(__name__)

# Ids are made by record.new_id; anything else is never looked up on disk, so a crafted id
# cannot name a path outside the folder.
_ID = re.compile(r"chatcmpl-[0-9a-f]{32}")


class TraceStore:
    def __init__(self, max_records: int = 1000, folder: Path | None = None) -> None:
        self.max_records = max_records
        self.folder = folder
        self._records: OrderedDict[str, ServeRecord] = OrderedDict()

    def add(self, record: ServeRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > self.max_records:
            self._records.popitem(last=False)

    def finished(self, record: ServeRecord) -> None:
        """Persist a record that will change no more (with ``--trace-dir``). A write that
        fails is logged, not raised: the client's answer matters more than its record."""
        if self.folder is None:
            return
        from matrix_align.io import atomic_write_text

        try:
            atomic_write_text(self.folder / f"{record.id}.json", record.model_dump_json() + "\n")
        except OSError as exc:
            log.warning("could not write the trace of %s: %s", record.id, exc)

    def get(self, record_id: str) -> dict[str, Any] | None:
        record = self._records.get(record_id)
        if record is not None:
            return record.model_dump(mode="json")
        if self.folder is None or not _ID.fullmatch(record_id):
            return None
        try:
            return json.loads((self.folder / f"{record_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
