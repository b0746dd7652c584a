"""Small file helpers shared by the commands: outputs are written whole or not at all, and a
destination or input that cannot be used is one clear error before any work starts.

Temporary files and folders are made beside their final name (so the rename that publishes
them is atomic) under a hidden name that carries the writer's process id. A process killed
by SIGKILL cannot clean up after itself, so the next writer of the same name removes the
leftovers whose process is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.reading import load_yaml, loads_json, read_text

TEMP_SUFFIX = ".tmp"


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_orphans(folder: Path, prefix: str) -> None:
    """Remove ``folder/PREFIX<pid>-*`` files and folders whose process no longer runs."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def temp_beside(path: str | Path, *, folder: bool = False) -> Path:
    """A new, empty, hidden temp file (or folder) beside ``path``, unique to this call, after
    removing the ones killed writers of ``path`` left behind."""
    path = Path(path)
    prefix = f".{path.name}."
    sweep_orphans(path.parent, prefix)
    while True:
        tmp = path.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            if folder:
                tmp.mkdir()
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return tmp


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temp file beside ``path`` and rename it over ``path``, so a crash
    never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """``atomic_write_text`` of ``data`` as indented JSON: a reader never sees half of it."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    return atomic_write_text(path, text)


def _folder_problem(path: Path, *, keep: bool = True) -> str | None:
    """Why files cannot be written into ``path`` (created if missing), or None. Without
    ``keep``, the folders this check created are removed again."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    missing = [p for p in (path, *path.parents) if not p.exists()]  # the deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        temp_beside(path / "write-check").unlink()
    except (FileExistsError, NotADirectoryError):
        return f"{path} cannot be created: part of that path is a file"
    except PermissionError:
        return f"{path} is not writable (permission denied)"
    except OSError as exc:
        return f"{path} cannot be written: {exc.strerror or exc}"
    finally:
        for made in missing if not keep else []:
            try:
                made.rmdir()
            except OSError:  # another process put something there meanwhile: its folder now
                break
    return None


def writable_folder(path: str | Path, what: str, *, keep: bool = True) -> Path:
    """Create ``path`` if needed and prove it takes files; ``what`` names it in the error
    (e.g. ``--output``). Checked before any work, so a bad destination never costs a run.

    ``keep=False`` removes again the folders the check created: for a run folder that its
    lock (``folders.store.DirectoryLock``) creates when the work starts, so a command that
    then refuses its input leaves no empty folder behind."""
    path = Path(path)
    problem = _folder_problem(path, keep=keep)
    if problem:
        raise MatrixAlignError(
            f"{what} {problem}.", hint=f"give {what} a folder you can write to (created if missing)"
        )
    return path


def writable_file(path: str | Path, what: str) -> Path:
    """Check that a file can be written at ``path`` (its folder is created if needed)."""
    path = Path(path)
    hint = f"give {what} a file path in a folder you can write to"
    if path.is_dir():
        raise MatrixAlignError(f"{what} {path} is a folder, not a file.", hint=hint)
    problem = _folder_problem(path.parent)
    if problem:
        raise MatrixAlignError(f"{what} {path} cannot be written: {problem}.", hint=hint)
    return path


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's content, or one clear error saying why it cannot be read (a FIFO
    or a device is refused by ``reading.read_text``)."""
    try:
        return read_text(path, what)
    except FileNotFoundError:
        raise MatrixAlignError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise MatrixAlignError(f"{what} {path} is a folder, not a file.") from None
    except PermissionError:
        raise MatrixAlignError(f"{what} {path} cannot be read (permission denied).") from None
    except UnicodeDecodeError as exc:
        raise MatrixAlignError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}).",
            hint="save it as UTF-8",
        ) from None
    except OSError as exc:
        raise MatrixAlignError(f"{what} {path} cannot be read: {exc.strerror or exc}.") from None


def read_yaml_mapping(path: str | Path, what: str = "Config file") -> dict[str, Any]:
    """A YAML file holding a mapping (an empty file is an empty mapping)."""
    import yaml

    path = Path(path)
    text = _read_text(path, what)
    try:
        data = load_yaml(text, f"{what} {path}")
    except yaml.YAMLError as exc:
        raise MatrixAlignError(f"{what} {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MatrixAlignError(f"{what} {path} must hold a mapping of field: value.")
    return data


_YAML11_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}


def parse_assignments(items: list[str], *, example: str) -> dict[str, Any]:
    """``--set KEY=VALUE`` strings as a mapping, later ones winning; keys with dashes turned
    into underscores (``memory-budget`` -> ``memory_budget``), values parsed as YAML scalars
    (``3`` an int, ``true`` a bool, ``[a,b]`` a list; anything else stays text)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise MatrixAlignError(f"--set expects KEY=VALUE, got {item!r}", hint=example)
        if raw.strip().lower() in _YAML11_BOOL_WORDS:
            # YAML 1.1 reads "no"/"off" as False, which would turn save_strategy=no into a
            # bool; pydantic still reads these words correctly for the bool fields.
            value: Any = raw.strip()
        else:
            try:
                value = load_yaml(raw, f"--set {key}") if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
        out[key] = value
    return out


def parse_jsonl(
    lines: Iterable[str],
    bad: Callable[[int, json.JSONDecodeError | None, Any], None],
    *,
    name: str | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each line of ``lines`` that holds a JSON object; blank
    lines are passed over (but counted). ``bad(number, error, value)`` is told of every other
    line: ``error`` is the decoding error of a line that is not JSON (``value`` None), else
    None with the value that is not an object. ``bad`` raises to stop, or returns to skip
    the line: each reader words its own errors and chooses to stop or to warn. A line past
    a parser limit (``reading``) stops with an ``InputLimitError`` naming its number (and
    ``name``, the file's)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = loads_json(line, f"{name}, line {number}" if name else f"Line {number}")
        except json.JSONDecodeError as exc:
            bad(number, exc, None)
            continue
        if not isinstance(value, dict):
            bad(number, None, value)
            continue
        yield number, value


def read_json_object(path: str | Path, what: str, *, hint: str | None = None) -> dict[str, Any]:
    """A JSON file holding an object; anything else is one clear error with ``hint``."""
    path = Path(path)
    try:
        text = _read_text(path, what)
    except MatrixAlignError as exc:
        raise MatrixAlignError(exc.message, hint=hint) from None
    try:
        data = loads_json(text, f"{what} {path}")
    except json.JSONDecodeError as exc:
        raise MatrixAlignError(f"{what} {path} is not valid JSON ({exc.msg}).", hint=hint) from None
    if not isinstance(data, dict):
        raise MatrixAlignError(f"{what} {path} must hold a JSON object.", hint=hint)
    return data
