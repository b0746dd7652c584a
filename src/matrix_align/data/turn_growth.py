"""The bound on what ``import --turns each`` writes.

With ``--turns each`` every answer's sample repeats the whole conversation before it, so a
conversation of n answers is written about n/2 times: the output grows with the square of
a conversation's length (a 142 KB file of one long conversation became 143 MB). That is
refused, before anything is written, when the samples' text would be more than
``MAX_GROWTH`` times the conversations' text and over ``FLOOR_CHARS`` (a small file may
grow more: it stays small), naming the conversation that grows most and what to do
instead. Ordinary chat data (a few exchanges per conversation) grows a few times.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError

MAX_GROWTH = 50
FLOOR_CHARS = 64 * 2**20


def check_growth(path: Path, conversations: list[Any], samples: list[Any]) -> None:
    """Refuse an import whose samples would hold too many times its conversations' text."""
    given = sum(len(turn.content) for c in conversations for turn in c.turns)
    written: Counter[int] = Counter()  # by the conversation's position in the file
    for sample in samples:
        text = sum(len(m.content) for m in (*sample.prompt, *sample.completion))
        written[sample.meta["import"]["record"]] += text
    total = sum(written.values())
    if total <= max(MAX_GROWTH * given, FLOOR_CHARS):
        return
    ((worst, worst_chars),) = written.most_common(1)
    answers = sum(1 for s in samples if s.meta["import"]["record"] == worst)
    raise MatrixAlignError(
        f"{path}: the samples would hold {total / 1e6:,.0f} million characters for "
        f"{given / 1e6:,.1f} million in its conversations ({total / max(given, 1):,.0f} times "
        "as much): each answer's sample repeats the whole conversation before it, so a long "
        f"conversation grows with the square of its length (record {worst}: {answers} "
        f"answers, {worst_chars / 1e6:,.0f} million characters).",
        hint="use --turns last (one sample per conversation, the earlier turns as context), "
        "or split the long conversations into shorter ones",
    )
