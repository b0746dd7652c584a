"""Word-level differences between the first answer and the MATRIX answer.

The whole point of a scene is how it changed the answer, so the page highlights exactly the
words that were removed and added. Whitespace runs are tokens of their own: the highlighted
spans keep the original spacing and line breaks, and a change inside a paragraph does not
swallow its neighbours. The segments are plain data; the template escapes their text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)

Op = Literal["same", "removed", "added"]


@dataclass(frozen=True)
class Segment:
    op: Op
    text: str


@dataclass(frozen=True)
class WordDiff:
    before: list[Segment]  # the first answer: unchanged and removed words
    after: list[Segment]  # the final answer: unchanged and added words
    similarity: float  # 0..1, difflib's ratio over words

    @property
    def removed_words(self) -> int:
        return sum(_word_count(s.text) for s in self.before if s.op == "removed")

    @property
    def added_words(self) -> int:
        return sum(_word_count(s.text) for s in self.after if s.op == "added")


def _word_count(text: str) -> int:
    return sum(1 for token in _TOKENS.findall(text) if not token.isspace())


def _append(segments: list[Segment], op: Op, text: str) -> None:
    """Merge runs of the same kind, so the page gets one span per change, not one per word."""
    if not text:
        return
    if segments and segments[-1].op == op:
        segments[-1] = Segment(op, segments[-1].text + text)
    else:
        segments.append(Segment(op, text))


def word_diff(before: str, after: str) -> WordDiff:
    """Split both texts into words, punctuation and whitespace, and align them with difflib.

    ``autojunk`` is off: with it, difflib ignores frequent tokens (spaces, "the") in texts
    over 200 tokens, which breaks long answers into meaningless fragments.
    """
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    left: list[Segment] = []
    right: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(left, "same", "".join(a[i1:i2]))
            _append(right, "same", "".join(b[j1:j2]))
            continue
        _append(left, "removed", "".join(a[i1:i2]))
        _append(right, "added", "".join(b[j1:j2]))
    words_a = [t for t in a if not t.isspace()]
    words_b = [t for t in b if not t.isspace()]
    ratio = difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()
    return WordDiff(before=left, after=right, similarity=ratio)
