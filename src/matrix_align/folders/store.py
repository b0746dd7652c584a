"""Append-only JSONL files keyed by a stable ``id``: the reason a killed run loses nothing.

Why this shape:
- Each record is one line, written with a single ``O_APPEND`` write loop and ``fsync``-ed
  before the next sample is counted as done, so a finished sample survives a crash.
- The newline is the last byte of a record. A line without one is the torn tail of a write
  interrupted by ``kill -9`` (or a power cut): opening the store truncates it away, so the
  sample is simply done again; it is never half-kept and never duplicated.
- Opening the store reads every complete line and indexes its ``id``; ``generate`` skips
  those ids, which is what "resume" means. A complete line that is not valid JSON (disk
  corruption, a hand edit, or past a parser's limit, see ``reading``) is counted and
  skipped, never rewritten or deleted.
- A lock file keeps two processes from appending to the same folder at once.
- Every store file and lock is opened by ``open_store_file``, which refuses a symbolic link
  or anything but a regular file: a ``samples.jsonl`` linked to a file outside the folder
  would otherwise have that file's last line truncated (it looks torn) and records appended.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from matrix_align.errors import MatrixAlignError
from matrix_align.io import temp_beside
from matrix_align.reading import InputLimitError, loads_json

IndexFn = Callable[[dict[str, Any]], Any]
LOCK_FILE = ".lock"  # a run folder's lock (``DirectoryLock``)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows has no flag (links need admin)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _not_a_file(path: Path, what: str) -> MatrixAlignError:
    return MatrixAlignError(
        f"{path} is {what}, not a regular file; matrix-align keeps its records and locks "
        "only in regular files (through a link it could truncate or append to a file "
        "outside the folder).",
        hint=f"remove {path} (or replace it with a copy of the file it stands for), then "
        "run the command again",
    )


def open_store_file(path: Path, flags: int) -> int:
    """A file descriptor on the store file or lock ``path`` (``os.open`` ``flags``), which
    must be a regular file: a symbolic link is refused whenever ``flags`` may write, and a
    FIFO, device or folder always (reading one would block, or never end)."""
    write = bool(flags & _WRITES)
    try:
        fd = os.open(path, flags | _NONBLOCK | (_NOFOLLOW if write else 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (write and path.is_symlink()):
            raise _not_a_file(path, "a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO nobody reads, a folder
            raise _not_a_file(path, "a FIFO" if exc.errno == errno.ENXIO else "a folder") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        raise _not_a_file(path, kind)
    if _NONBLOCK:  # only wanted for the open itself
        os.set_blocking(fd, True)
    return fd


def dumps_line(record: dict[str, Any] | BaseModel) -> bytes:
    """One record as one JSON line. ``json.dumps`` escapes newlines inside strings, so the
    only raw newline is the terminating one."""
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return (text + "\n").encode("utf-8")


@dataclass
class OpenReport:
    """What opening a store found (shown to the user when it is not all clean)."""

    records: int = 0
    torn_bytes: int = 0  # bytes of an unfinished last line that were truncated
    corrupt_lines: list[int] | None = None  # 1-based line numbers skipped as invalid JSON
    duplicates: int = 0  # lines whose id was already seen (the first one wins)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every complete, valid line; never modifies the file.

    Readers (export, summaries, ``evaluate``) use this so that reading a store another
    process is appending to is safe: an unfinished last line is just not yielded yet.
    """
    if not path.exists():
        return
    with os.fdopen(open_store_file(path, os.O_RDONLY), "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            try:
                record = loads_json(line, f"{path}, line {number}")
            except (json.JSONDecodeError, UnicodeDecodeError, InputLimitError):
                continue
            if isinstance(record, dict):
                yield number, record


class JsonlStore:
    """An append-only JSONL file of records that each carry an ``id``.

    ``index`` maps a record to the small value kept in memory per id (default: None), so a
    store of thousands of large traces can be resumed and summarised without holding the
    records themselves.
    """

    def __init__(self, path: Path | str, *, index: IndexFn | None = None) -> None:
        self.path = Path(path)
        self._index_fn = index
        self.entries: dict[str, Any] = {}
        self._fd: int | None = None

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> set[str]:
        return set(self.entries)

    def open(self) -> OpenReport:
        """Index the existing file, truncating a torn last line, and open it for appending."""
        report = OpenReport(corrupt_lines=[])
        self.entries.clear()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        good_end = 0
        # Opened once, for reading, truncating and appending alike: the file checked is the
        # file written (a link swapped in between two opens would not be).
        fd = open_store_file(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.endswith(b"\n"):
                        report.torn_bytes = len(line)
                        break
                    good_end += len(line)
                    try:
                        record = loads_json(line, f"{self.path}, line {number}")
                    except (json.JSONDecodeError, UnicodeDecodeError, InputLimitError):
                        record = None  # nested too deep or a huge number: corrupt, like the rest
                    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                        report.corrupt_lines.append(number)
                        continue
                    if record["id"] in self.entries:
                        report.duplicates += 1
                        continue
                    self.entries[record["id"]] = self._index_fn(record) if self._index_fn else None
            if report.torn_bytes:
                os.ftruncate(fd, good_end)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        report.records = len(self.entries)
        self._fd = fd
        return report

    def append(self, record: dict[str, Any] | BaseModel) -> None:
        """Write one record and make it durable before returning."""
        if self._fd is None:
            raise RuntimeError("JsonlStore.append before open()")
        data = dumps_line(record)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        as_dict = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
        self.entries[as_dict["id"]] = self._index_fn(as_dict) if self._index_fn else None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every stored record, first occurrence of each id only, in file order."""
        seen: set[str] = set()
        for _, record in read_jsonl(self.path):
            record_id = record.get("id")
            if isinstance(record_id, str) and record_id not in seen:
                seen.add(record_id)
                yield record

    def rewrite(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Atomically replace the file with the records ``keep`` accepts; returns how many
        were dropped. Used for ``errors.jsonl``, which lists only outstanding failures."""
        was_open = self._fd is not None
        self.close()
        kept = dropped = 0
        tmp = temp_beside(self.path)
        with tmp.open("wb") as handle:
            for record in self.records():
                if keep(record):
                    handle.write(dumps_line(record))
                    kept += 1
                else:
                    dropped += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        if was_open:
            self.open()
        return dropped

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirectoryLock:
    """An exclusive, advisory lock on an output folder (``fcntl.flock`` on ``.lock``).

    Two ``generate`` processes appending to the same ``samples.jsonl`` would both resume from
    the same ids and write each sample twice, and two exports into one folder would
    interleave their files; the second one is refused instead. The OS
    drops the lock when the process dies, even by ``kill -9``. Every writer of a run
    folder takes it: ``generate``, ``evaluate``, ``sweep``, ``export`` and ``import``.
    """

    def __init__(
        self,
        folder: Path | str,
        hint: str = "wait for it to finish, or choose another --output folder",
    ) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.hint = hint
        self._handle: Any = None
        self._made: list[Path] = []  # the folders acquire() created, deepest first

    def acquire(self) -> None:
        folder = self.path.parent
        self._made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.fdopen(open_store_file(self.path, os.O_RDWR | os.O_CREAT), "r+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; run one process per folder.
            self._handle = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise MatrixAlignError(
                f"Another matrix-align process is writing to {self.path.parent}.",
                hint=self.hint,
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            if self._made:
                self._remove_unused_folders()
            self._handle.close()
            self._handle = None

    def _remove_unused_folders(self) -> None:
        """The folders this lock created go again when nothing but the lock was written in
        them: a command that refused its input (after locking) leaves nothing behind. The
        lock is still held, so no other matrix-align process is writing there."""
        try:
            if [entry.name for entry in self.path.parent.iterdir()] != [self.path.name]:
                return
            self.path.unlink()
            for made in self._made:
                made.rmdir()
        except OSError:  # something arrived meanwhile: then the folder is in use
            pass

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
