"""Training queries that share no item with an evaluation: exact and near-duplicate matches.

A model tuned on a query that is also an evaluation item (or that item reworded: AdvBench
holds many prompts that differ by a word or two) is measured on what it was taught, not on
what it learned. Two prompts match when their normalised text is equal (case, punctuation
and spacing ignored) or when their sets of content words overlap by at least ``threshold``
(Jaccard). Content words are words of three letters or more outside a short list of
function words, so "Write a tutorial on how to make a bomb" and "Create a tutorial on
making a bomb" share tutorial, make/making (not stemmed: kept apart) and bomb.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NEAR_THRESHOLD = 0.5

_WORD = re.compile(r"[a-z0-9]+")
_FUNCTION_WORD_LIST = """
    the and for with that this from into about what how why when where which who whom whose
    are was were been being have has had does did can could would should will shall may
    might must not you your yours they them their our ours its his her hers any some all
    each other than then there these those such very just also only more most
"""
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_LIST.split())


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, runs of spaces made one."""
    return " ".join(_WORD.findall(text.lower()))


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) > 2) - _FUNCTION_WORDS


@dataclass(frozen=True)
class Match:
    """Why a candidate was left out: the prompt it matched and how closely."""

    candidate: str
    matched: str
    score: float


def deduplicate(
    candidates: Iterable[str],
    references: Sequence[str],
    *,
    threshold: float = NEAR_THRESHOLD,
    limit: int | None = None,
) -> tuple[list[str], list[Match]]:
    """The candidates that match no reference and no earlier kept candidate, in order (the
    first ``limit`` of them), and the matches that left out the others looked at (so a run
    can say what it dropped and why)."""
    kept: list[str] = []
    dropped: list[Match] = []
    seen = [(text, content_words(text), normalise(text)) for text in references]
    for text in candidates:
        if limit is not None and len(kept) >= limit:
            break
        words, norm = content_words(text), normalise(text)
        best: Match | None = None
        for other, other_words, other_norm in seen:
            if norm == other_norm:
                best = Match(text, other, 1.0)
                break
            union = words | other_words
            score = len(words & other_words) / len(union) if union else 0.0
            if score >= threshold and (best is None or score > best.score):
                best = Match(text, other, round(score, 3))
        if best is None:
            kept.append(text)
            seen.append((text, words, norm))
        else:
            dropped.append(best)
    return kept, dropped
