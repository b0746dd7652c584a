"""``summary.json`` of a ``generate`` run as blocks a page can show.

The summary's shape belongs to ``generate`` and will grow; rather than name its fields,
each value is shown by its shape: numbers become figures, a mapping of mappings a table
(one row per key), a list of records a table, a list of texts a list, a flat mapping a
key/value table. A new field appears on the page without a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class Block:
    kind: Literal["figures", "table", "kv", "list", "json"]
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # table rows; kv, figures: [label, value]
    items: list[str] = field(default_factory=list)  # list
    text: str = ""  # json


def _label(key: str) -> str:
    return key.replace("_", " ")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if value is None:
        return "–"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _table(title: str, records: list[tuple[str, dict[str, Any]]], key_name: str) -> Block:
    columns: list[str] = []
    for _, record in records:
        columns.extend(k for k in record if k not in columns)
    rows = [[name] + [_show(record.get(c)) for c in columns] for name, record in records]
    head = [key_name] if any(name for name, _ in records) else []
    if not head:
        rows = [row[1:] for row in rows]
    return Block("table", title, columns=head + [_label(c) for c in columns], rows=rows)


def summary_blocks(summary: dict[str, Any]) -> list[Block]:
    """Blocks in the summary's own order; top-level numbers gather into one figures block."""
    figures = Block("figures", "run")
    blocks: list[Block] = [figures]
    for key, value in summary.items():
        title = _label(key)
        if value in ({}, [], ""):
            continue  # an empty section says nothing ("failures by reason: {}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            figures.rows.append([title, _show(value)])
        elif _is_scalar(value):
            blocks.append(Block("kv", title, rows=[[title, _show(value)]]))
        elif isinstance(value, dict) and value and all(_is_scalar(v) for v in value.values()):
            numeric = all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
            )
            rows = [[_label(k), _show(v)] for k, v in value.items()]
            blocks.append(
                Block("figures" if numeric and len(value) <= 8 else "kv", title, rows=rows)
            )
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            blocks.append(_table(title, [(str(k), v) for k, v in value.items()], ""))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks.append(_table(title, [("", v) for v in value], ""))
        elif isinstance(value, list) and all(_is_scalar(v) for v in value):
            blocks.append(Block("list", title, items=[_show(v) for v in value]))
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
            blocks.append(Block("json", title, text=text))
    # Merge the lone scalars into one key/value table so they do not each get a heading.
    lone = [b for b in blocks if b.kind == "kv" and len(b.rows) == 1 and b.title == b.rows[0][0]]
    if lone:
        blocks = [b for b in blocks if b not in lone]
        blocks.insert(1, Block("kv", "about this run", rows=[b.rows[0] for b in lone]))
    return [b for b in blocks if b.rows or b.items or b.text]
