"""Judges: how answers are scored, and how far two judges agree.

- ``detect_refusal``: a deterministic refusal-phrase detector (no model): a cheap refusal
  rate on every benchmark, over-refusal on XSTest, and exact expectations in tests.
- ``Judge``: a model judge, always named by the user, never silently the model under test.
  It knows no metric: it asks one question and records its calls. ``Judge.ask`` is a
  structured question with one of our prompts (under the judge system prompt), re-asked once
  if its reply is invalid; ``Judge.ask_text`` sends messages as they are and returns the
  text. Each metric's question (its prompt, its reply shape, its parsing) is its own: the
  rubrics, pairwise and MT-Bench questions are in ``judge_questions``, the harm classifiers'
  (HarmBench's yes/no question, Llama Guard) in ``classifiers``.
- ``agreement``, ``cohen_kappa``: how far two judges agree.

A judge reply that cannot be parsed (after one re-ask for structured replies) gives an
*unscored* verdict. It is counted and shown, and never becomes a win, a loss or a score:
treating it as anything else would let a judge's formatting failures move the results.

Judge calls run at temperature 0 and go through ``SceneCalls``, so every judgement keeps
its calls (messages, output, tokens) and the report can show what judging cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from matrix_align.evaluate.prompts import render
from matrix_align.folders.results import Verdict
from matrix_align.llm.base import ChatModel, Message
from matrix_align.refusal import RefusalDetector, refusal_phrase
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.schemas import json_schema
from matrix_align.simulation.trace import ModelCall, SceneTrace
from matrix_align.systems import reason_limit

ReplyT = TypeVar("ReplyT", bound=BaseModel)

REFUSAL_DETECTOR = "refusal-phrases"
ANSWER_CHAR_LIMIT = 6000  # answers longer than this are cut in judge prompts


@dataclass
class Judged:
    verdict: Verdict
    calls: list[ModelCall]


# --- the refusal-phrase detector ------------------------------------------------------------


def detect_refusal(answer: str, detector: RefusalDetector = "ours") -> Verdict:
    """Refusal or compliance, from a fixed phrase list: ours, near the start of the answer,
    or GCG's test prefixes (see ``matrix_align.refusal``)."""
    phrase = refusal_phrase(answer, detector)
    if phrase is None:
        return Verdict(scored=True, label="compliance", score=0.0)
    return Verdict(scored=True, label="refusal", score=1.0, detail={"phrase": phrase})


# --- the model judge ------------------------------------------------------------------------


def clip(text: str) -> str:
    """An answer as judge prompts show it: cut at ``ANSWER_CHAR_LIMIT`` characters."""
    if len(text) <= ANSWER_CHAR_LIMIT:
        return text
    return text[:ANSWER_CHAR_LIMIT] + "\n[... answer cut for length ...]"


class Judge:
    """A model used as a judge. ``key`` names it in results (e.g. ``openai:gpt-4o``)."""

    def __init__(
        self,
        model: ChatModel,
        *,
        key: str | None = None,
        max_tokens: int = 512,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.key = key or getattr(model, "name", "judge")
        self.config = SimulationConfig(temperature=0.0, max_tokens=max_tokens, seed=seed)

    def _recorder(self, query: str) -> SceneCalls:
        return SceneCalls(SceneTrace(query=query), self.config)

    def _messages(self, prompt: str) -> list[Message]:
        return [
            {"role": "system", "content": render("judge_system")},
            {"role": "user", "content": prompt},
        ]

    async def ask(
        self,
        query: str,
        template: str,
        reply: type[ReplyT],
        *,
        stage: str,
        round: int | None = None,
        **values: object,
    ) -> tuple[ReplyT | None, list[ModelCall]]:
        """One structured question: the prompt ``prompts/<template>.j2`` rendered with
        ``query`` and ``values`` (under the judge system prompt), a reply of type ``reply``
        (a free-text ``reason`` or ``reasoning`` field is capped to fit the token budget).
        ``stage`` and ``round`` name the call in its record and seed it. Returns the reply,
        or None when it could not be parsed even after the re-ask (an unparsed reply is
        never scored, so there is no fallback reply), and the calls it took. A new metric
        asks its judge this way (see evaluate/judge_questions.py)."""
        calls = self._recorder(query)
        limit = {"maxLength": reason_limit(self.config.max_tokens)}
        fields = reply.model_fields
        schema = json_schema(reply, {f: limit for f in ("reason", "reasoning") if f in fields})
        parsed, from_model = await calls.structured(
            self.model,
            self._messages(render(template, query=query, **values)),
            reply,
            schema,
            stage=stage,
            round=round,
            fallback=reply.model_construct,  # never returned: a failed ask is None
        )
        return (parsed if from_model else None), calls.trace.calls

    async def ask_text(
        self,
        query: str,
        messages: list[Message],
        *,
        stage: str,
        round: int | None = None,
        max_tokens: int | None = None,
    ) -> tuple[str, list[ModelCall]]:
        """One free-text call of ``messages`` as they are, without the judge system prompt:
        how a published prompt or a classifier that brings its own format is asked
        (evaluate/judge_questions.py, evaluate/classifiers.py). The reply (stripped) is
        capped at the judge's own cap, and at ``max_tokens`` if given; returns it and the
        call."""
        calls = self._recorder(query)
        cap = min(max_tokens or self.config.max_tokens, self.config.max_tokens)
        text = await calls.text(self.model, messages, stage=stage, round=round, max_tokens=cap)
        return text, calls.trace.calls


# --- agreement ----------------------------------------------------------------------------


class Agreement(BaseModel):
    n: int
    percent: float | None  # observed agreement, in percent
    kappa: float | None  # Cohen's kappa; None when undefined (too few items, one category)


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items: agreement beyond chance.

    None when it is undefined: no items, or both raters always gave the same single label
    (chance agreement is then 1 and kappa is 0/0).
    """
    if len(first) != len(second):
        raise ValueError("the raters must label the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[k] * counts_b[k] for k in counts_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(first: Sequence[str], second: Sequence[str]) -> Agreement:
    n = len(first)
    if n == 0:
        return Agreement(n=0, percent=None, kappa=None)
    matches = sum(a == b for a, b in zip(first, second, strict=True))
    kappa = cohen_kappa(first, second)
    return Agreement(
        n=n, percent=round(100.0 * matches / n, 1), kappa=None if kappa is None else round(kappa, 3)
    )
