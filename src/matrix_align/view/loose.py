"""Tolerant readers shared by the dataset and evaluation pages.

A viewer is what people open when something went wrong, so a bad line (a record cut off by
a killed run, a field a newer version added) becomes a warning on the page, never a page
that refuses to open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matrix_align.io import parse_jsonl


def jsonl_objects(path: Path, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each JSON object line of ``path``; others are warned."""
    if not path.is_file():
        return

    def bad(number: int, error: json.JSONDecodeError | None, value: Any) -> None:
        problem = f"not valid JSON ({error.msg})" if error is not None else "not a JSON object"
        warnings.append(f"{path.name} line {number}: {problem}; skipped")

    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from parse_jsonl(handle, bad)


def text_of(value: Any) -> str:
    """A message list's last content, or the value itself as text."""
    if isinstance(value, list) and value:
        last = value[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    if isinstance(value, dict) and "content" in value:
        return str(value["content"])
    return "" if value is None else str(value)


def last_user(prompt: Any) -> tuple[str, int]:
    """The query of a prompt (its last user turn) and how many user turns led to it."""
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return str(users[-1].get("content", "")), len(users)
    return text_of(prompt), 1


def as_dict(value: Any) -> dict[str, Any]:
    """A dict, or a JSON string of one (exports store ``meta`` as a string), else empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}
