"""Reading input someone else wrote: a user's file or a client's body, as one clear error
when it is past a limit, never a traceback.

The parsers stop on input past a limit of their own with an exception that is not their
parse error, so a caller that words ``JSONDecodeError`` or ``YAMLError`` well still lets
these escape as tracebacks:

- nesting deeper than Python's recursion limit (``[[[[...``): ``RecursionError`` from json
  and PyYAML;
- an integer of more than ``sys.get_int_max_str_digits()`` digits (4,300): ``ValueError``
  from ``int()``, which both call (and which would fail again when the value is written);
- a CSV field over ``csv.field_size_limit()`` (131,072 characters): ``csv.Error``;
- a path that is a FIFO or a device: reading blocks forever, or never ends (``/dev/zero``).

``input_limits`` turns the first two into ``InputLimitError``, ``open_text`` and
``read_text`` refuse the last before reading a byte, and ``loads_json``, ``load_yaml`` and
``csv_rows`` are the parsers with these in place. A CSV field is never too long here: the
field limit is raised to the text's own length, since the text is already in memory.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from matrix_align.errors import MatrixAlignError

# The start of CPython's message for an integer past the digit limit (3.11+): a plain
# ValueError, told from the others by its text.
_INT_LIMIT = "Exceeds the limit"


class InputLimitError(MatrixAlignError):
    """Input past a parser's limit (nesting depth, integer digits) or not a regular file."""


@contextmanager
def input_limits(where: str) -> Iterator[None]:
    """Parse inside this block: a parser's limit becomes one ``InputLimitError`` naming
    ``where`` (e.g. ``Config file run.yaml``); its own parse errors pass through."""
    try:
        yield
    except RecursionError:
        raise InputLimitError(
            f"{where} is nested too deeply to read (lists or mappings inside one another "
            f"more than about {sys.getrecursionlimit()} levels).",
            hint="flatten it: no real config, dataset or request nests that deep",
        ) from None
    except ValueError as exc:
        if not str(exc).startswith(_INT_LIMIT):
            raise
        raise InputLimitError(
            f"{where} holds an integer of more than {sys.get_int_max_str_digits():,} digits.",
            hint="write such a number as text (in quotes), or remove it",
        ) from None


def loads_json(text: str | bytes, where: str, **options: Any) -> Any:
    """``json.loads`` with its limits as ``InputLimitError``; ``JSONDecodeError`` passes."""
    with input_limits(where):
        return json.loads(text, **options)


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` with its limits as ``InputLimitError``; ``YAMLError`` passes."""
    import yaml

    with input_limits(where):
        return yaml.safe_load(text)


def csv_rows(text: str, where: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and the rows (``csv.DictReader``'s) of the CSV ``text``; a field may be as
    long as the text itself (csv's default limit, 131,072 characters, would refuse a long
    answer in a sheet), and anything csv cannot read is one error naming the line."""
    # Process-wide, and only ever raised: the text is in memory already, so a field of its
    # length costs nothing more.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(text.splitlines())
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise MatrixAlignError(
            f"{where}, line {reader.line_num}: not valid CSV ({exc}).",
            hint="save it again as CSV UTF-8 from the spreadsheet",
        ) from None
    return list(reader.fieldnames or []), rows


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_text(
    path: str | Path, what: str, *, encoding: str = "utf-8", newline: str | None = None
) -> TextIO:
    """A regular file opened as text (``what`` names it in the error). A FIFO or a device
    is refused before it is read (it would block, or never end); the open does not wait for
    a FIFO's writer. ``OSError`` passes, for the caller to word."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputLimitError(
                f"{what} {path} is {_kind(mode)}, not a file matrix-align can read.",
                hint="give it a regular file (save the stream to a file first)",
            )
        if hasattr(os, "O_NONBLOCK"):  # POSIX: only wanted for the open itself
            os.set_blocking(fd, True)
        return os.fdopen(fd, "r", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise


def read_text(path: str | Path, what: str, *, encoding: str = "utf-8") -> str:
    """A regular file's whole text (``open_text``); ``OSError`` and ``UnicodeDecodeError``
    pass, for the caller to word."""
    with open_text(path, what, encoding=encoding) as handle:
        return handle.read()
