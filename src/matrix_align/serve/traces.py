"""The records of recent requests, by id, within a count and a byte budget, so a
long-running server does not grow without bound:

- in memory, the newest ``max_records`` and, of the finished ones, no more than
  ``max_bytes`` of them (their JSON size): older ones are dropped, oldest first. One
  record's size is itself bounded by the scene budget (``budget.py``);
- with ``--trace-dir``, each finished one is also written as ``<id>.json`` and read back
  from there once it has left memory; the folder's records are kept within
  ``folder_max_bytes``, the oldest files deleted first (those of earlier runs included).
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from matrix_align.serve.record import ServeRecord

log = logging.getLogger(__name__)

# Ids are made by record.new_id; anything else is never looked up on disk, so a crafted id
# cannot name a path outside the folder.
_ID = re.compile(r"chatcmpl-[0-9a-f]{32}")
_FILE_GLOB = "chatcmpl-*.json"


class TraceStore:
    def __init__(
        self,
        max_records: int = 1000,
        folder: Path | None = None,
        *,
        max_bytes: int = 128 * 2**20,
        folder_max_bytes: int = 2 * 2**30,
    ) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.folder = folder
        self.folder_max_bytes = folder_max_bytes
        self._records: OrderedDict[str, ServeRecord] = OrderedDict()
        self._sizes: dict[str, int] = {}  # of the finished records in memory
        self._files: deque[tuple[Path, int]] = deque()  # the folder's records, oldest first
        if folder is not None:
            self._files.extend(_existing(folder))
            self._trim_folder()

    @property
    def bytes(self) -> int:
        """The JSON size of the finished records kept in memory."""
        return sum(self._sizes.values())

    @property
    def folder_bytes(self) -> int:
        return sum(size for _, size in self._files)

    def add(self, record: ServeRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > self.max_records:
            dropped, _ = self._records.popitem(last=False)
            self._sizes.pop(dropped, None)

    def finished(self, record: ServeRecord) -> None:
        """Account for a record that will change no more, and persist it (with
        ``--trace-dir``). A write that fails is logged, not raised: the client's answer
        matters more than its record."""
        text = record.model_dump_json() + "\n"
        if record.id in self._records:
            self._sizes[record.id] = len(text.encode())
            self._trim_memory()
        if self.folder is None:
            return
        from matrix_align.io import atomic_write_text

        path = self.folder / f"{record.id}.json"
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            log.warning("could not write the trace of %s: %s", record.id, exc)
            return
        self._files.append((path, len(text.encode())))
        self._trim_folder()

    def _trim_memory(self) -> None:
        total = self.bytes
        for record_id in list(self._sizes):  # the first finished first
            if total <= self.max_bytes:
                break
            total -= self._sizes.pop(record_id)
            del self._records[record_id]

    def _trim_folder(self) -> None:
        total = self.folder_bytes
        while total > self.folder_max_bytes and self._files:
            path, size = self._files.popleft()
            path.unlink(missing_ok=True)
            total -= size

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


def _existing(folder: Path) -> list[tuple[Path, int]]:
    """The records a folder already holds (earlier runs'), oldest first."""
    found = []
    for path in folder.glob(_FILE_GLOB):
        try:
            stat = path.stat()
        except OSError:
            continue
        if _ID.fullmatch(path.stem):
            found.append((stat.st_mtime, path, stat.st_size))
    return [(path, size) for _, path, size in sorted(found)]
