"""The gate: does a request run a MATRIX scene, or is it answered directly?

A scene costs tens of model calls; most requests a chat server sees are harmless, so a
server may run the scene only for the requests a cheap check flags:

- ``always``: every request runs a scene (the method as published).
- ``first-answer``: the model answers first, on its own (the call every scene starts with,
  so nothing is wasted: the scene reuses it). The request is flagged, and the scene runs,
  unless that answer already declines (the refusal detector, ``refusal.py``) and the
  scene's final step is one that keeps a refusal: the ``verdict`` design with
  ``keep_refusals`` (the defaults). There the scene could only confirm the decline, so
  skipping it changes no decision; it loses the scene's reworded decline that names the
  harm and offers an alternative. With any other final step a refusal can be overturned, so
  every request is flagged. This gate saves only the scenes of declined requests: it is the
  safe choice (every answer the model would give is checked), not the cheap one.
- ``keyword``: flagged when the query (a conversation's every turn) contains a word of a
  list (``keywords.txt`` or ``--keywords FILE``); others are answered directly with no
  scene. The cheap one: a harmless request costs one call. A harmful request phrased without
  any listed word is answered as the model alone would answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from matrix_align.errors import MatrixAlignError
from matrix_align.refusal import refusal_phrase
from matrix_align.simulation.config import SimulationConfig

Gate = Literal["always", "first-answer", "keyword"]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


@dataclass(frozen=True)
class GateDecision:
    scene: bool
    reason: str


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES).lower()).strip()


class KeywordRule:
    """Entries matched as whole words or phrases of the normalised message (case, curly
    quotes and runs of whitespace do not matter); a trailing ``*`` matches any ending."""

    def __init__(self, keywords: list[str]) -> None:
        self.keywords = tuple(dict.fromkeys(_normalise(k) for k in keywords if k.strip()))
        if not self.keywords:
            raise MatrixAlignError(
                "The keyword list is empty.", hint="give at least one keyword, one a line"
            )
        alternatives = "|".join(
            re.escape(k[:-1]) + r"\w*" if k.endswith("*") else re.escape(k)
            for k in sorted(self.keywords, key=len, reverse=True)
        )
        self._pattern = re.compile(rf"(?<!\w)({alternatives})(?!\w)")

    @classmethod
    def from_text(cls, text: str) -> KeywordRule:
        lines = (line.strip() for line in text.splitlines())
        return cls([line for line in lines if line and not line.startswith("#")])

    @classmethod
    def from_file(cls, path: Path) -> KeywordRule:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MatrixAlignError(
                f"Cannot read the keyword file {path}: {exc}",
                hint="give a UTF-8 text file with one keyword a line",
            ) from None
        return cls.from_text(text)

    def match(self, text: str) -> str | None:
        found = self._pattern.search(_normalise(text))
        return found.group(1) if found else None


@cache
def default_keywords() -> KeywordRule:
    text = resources.files("matrix_align.serve").joinpath("keywords.txt").read_text("utf-8")
    return KeywordRule.from_text(text)


def keyword_decision(rule: KeywordRule, query: str) -> GateDecision:
    keyword = rule.match(query)
    if keyword is None:
        return GateDecision(False, "no listed keyword in the message")
    return GateDecision(True, f"the message contains the keyword {keyword!r}")


def first_answer_decision(first_answer: str, config: SimulationConfig) -> GateDecision:
    phrase = refusal_phrase(first_answer)
    if phrase is None:
        return GateDecision(True, "the first answer helps: the scene checks what follows")
    if config.final_prompt == "verdict" and config.keep_refusals:
        return GateDecision(
            False,
            f"the first answer declines ({phrase!r}) and the final step keeps refusals",
        )
    return GateDecision(
        True,
        f"the first answer declines ({phrase!r}) but the final step "
        f"({config.final_prompt}, keep_refusals={config.keep_refusals}) may overturn it",
    )
