"""Reading FastChat / ShareGPT conversation files, checked record by record.

The MATRIX authors released their training data in FastChat's format (``matrix_data.json``):
a JSON list of ``{"id": ..., "conversations": [{"from": "human", "value": ...},
{"from": "gpt", "value": ...}, ...]}``. The same shape is ShareGPT's, and many files in the
wild vary it a little, so this reader accepts:

- a ``.json`` file holding a list of records, or a ``.jsonl`` / ``.ndjson`` file with one
  record per line;
- the turns under ``conversations`` (FastChat, ShareGPT) or ``messages`` (OpenAI, TRL);
- each turn as ``{"from", "value"}`` or ``{"role", "content"}``;
- speaker names ``human``/``user``, ``gpt``/``assistant`` (and ShareGPT's ``chatgpt``,
  ``bard``, ``bing``, ``model``) and ``system``, in any letter case;
- a top-level ``system`` string (LLaMA-Factory's ShareGPT variant), put first.

Anything else is an error that names the file, the record (its position, and its ``id``
when it has one) and what is wrong, before anything is written. A problem of shape (not an
object, no turn list, a turn without a speaker or text, a speaker that is not a chat role)
is an error, since a silently skipped record would change the training set unnoticed; which
turns are trainable is decided later (``data.importer``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.reading import loads_json, read_text
from matrix_align.text import require_unicode

SUFFIXES = (".json", ".jsonl", ".ndjson")
TURN_KEYS = ("conversations", "messages")
ROLES: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


@dataclass
class Turn:
    role: str  # user, assistant or system
    content: str


@dataclass
class Conversation:
    """One record of the file: its turns and everything else it carried."""

    position: int  # 1-based: the record's place in a .json list, or its line in a .jsonl
    id: str | None
    turns: list[Turn]
    fields: dict[str, Any] = field(default_factory=dict)  # the record's other keys
    format: str = "fastchat"  # "fastchat" (from/value) or "messages" (role/content)


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every record of a FastChat/ShareGPT file, or one clear error about the first bad one."""
    path = Path(path)
    if not path.exists():
        raise MatrixAlignError(f"File not found: {path}")
    if path.is_dir():
        raise MatrixAlignError(f"{path} is a folder, not a file.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise MatrixAlignError(
            f"{path}: unsupported file type {suffix or '(none)'!r}.",
            hint="import reads a FastChat/ShareGPT .json list or a .jsonl file (one "
            "conversation per line)",
        )
    try:
        text = read_text(path, "The chat file", encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MatrixAlignError(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    except OSError as exc:
        raise MatrixAlignError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    records = _jsonl_records(path, text) if suffix != ".json" else _json_records(path, text)
    if not records:
        raise MatrixAlignError(f"{path} holds no conversations.", hint="it is empty")
    return [_conversation(path, position, value, suffix) for position, value in records]


def _json_records(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        value = loads_json(text, str(path)) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise MatrixAlignError(
            f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).",
            hint="a .json file must hold one JSON list of conversations; use .jsonl for one "
            "conversation per line",
        ) from None
    if not isinstance(value, list):
        raise MatrixAlignError(
            f"{path}: expected a JSON list of conversations, found a {type(value).__name__}.",
            hint='FastChat\'s format is [{"id": ..., "conversations": [{"from": "human", '
            '"value": ...}, {"from": "gpt", "value": ...}]}, ...]',
        )
    return list(enumerate(value, start=1))


def _jsonl_records(path: Path, text: str) -> list[tuple[int, Any]]:
    records: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, loads_json(line, f"{path}, line {number}")))
        except json.JSONDecodeError as exc:
            raise MatrixAlignError(
                f"{path}, line {number}: not valid JSON ({exc.msg}, column {exc.colno}).",
                hint="each line of a JSONL file must be one conversation object",
            ) from None
    return records


def _where(path: Path, position: int, value: Any, suffix: str) -> str:
    place = f"record {position}" if suffix == ".json" else f"line {position}"
    key = value.get("id") if isinstance(value, dict) else None
    return f"{path}, {place}" + (f" (id {key!r})" if isinstance(key, str | int) else "")


def _conversation(path: Path, position: int, value: Any, suffix: str) -> Conversation:
    where = _where(path, position, value, suffix)
    if not isinstance(value, dict):
        raise MatrixAlignError(
            f"{where}: expected a conversation object, found a {type(value).__name__}.",
            hint='each conversation looks like {"id": ..., "conversations": [...]}',
        )
    key = next((k for k in TURN_KEYS if k in value), None)
    if key is None:
        found = ", ".join(map(str, value)) or "(none)"
        raise MatrixAlignError(
            f"{where}: no 'conversations' (or 'messages') list; its keys are: {found}.",
            hint="FastChat/ShareGPT records keep their turns under 'conversations'",
        )
    raw_turns = value[key]
    if not isinstance(raw_turns, list):
        raise MatrixAlignError(
            f"{where}: '{key}' must be a list of turns, found a {type(raw_turns).__name__}."
        )
    turns: list[Turn] = []
    system = value.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise MatrixAlignError(
                f"{where}: 'system' must be text, found a {type(system).__name__}."
            )
        if system.strip():
            turns.append(Turn("system", require_unicode(system, f"{where}, 'system'")))
    style: set[str] = set()
    for number, turn in enumerate(raw_turns, start=1):
        turns.append(_turn(f"{where}, turn {number}", turn, style))
    fields = {k: v for k, v in value.items() if k not in (key, "id", "system")}
    require_unicode(json.dumps(fields, ensure_ascii=False, default=str), f"{where}, its fields")
    ident = value.get("id")
    ident = str(ident) if isinstance(ident, str | int) and str(ident) else None
    return Conversation(
        position=position,
        id=require_unicode(ident, f"{where}, its 'id'") if ident is not None else None,
        turns=turns,
        fields=fields,
        format="messages" if style == {"role"} else "fastchat",
    )


def _turn(where: str, turn: Any, style: set[str]) -> Turn:
    if not isinstance(turn, dict):
        raise MatrixAlignError(
            f"{where}: expected a turn object, found a {type(turn).__name__}.",
            hint='a turn looks like {"from": "human", "value": "..."}',
        )
    if "from" in turn:
        speaker, text, style_name = turn.get("from"), turn.get("value"), "from"
    elif "role" in turn:
        speaker, text, style_name = turn.get("role"), turn.get("content"), "role"
    else:
        found = ", ".join(map(str, turn)) or "(none)"
        raise MatrixAlignError(
            f"{where}: no speaker ('from' or 'role'); its keys are: {found}.",
            hint='a turn looks like {"from": "human", "value": "..."}',
        )
    style.add(style_name)
    role = ROLES.get(speaker.strip().lower()) if isinstance(speaker, str) else None
    if role is None:
        raise MatrixAlignError(
            f"{where}: speaker {speaker!r} is not a chat role matrix-align trains on.",
            hint="speakers: human/user, gpt/assistant (chatgpt, bard, bing, model), system; "
            "tool and function turns are not supported",
        )
    if not isinstance(text, str):
        shown = "missing" if text is None else f"a {type(text).__name__}"
        field_name = "value" if style_name == "from" else "content"
        raise MatrixAlignError(f"{where}: the turn's '{field_name}' must be text, found {shown}.")
    return Turn(role, require_unicode(text, where))
