"""Critique specificity: how particular to its own query is the feedback that turns a first
answer into the final one?

The paper's argument for MATRIX over critique-revise is that a simulated scene yields
feedback specific to the query (who is hurt, how), where Constitutional AI drives each
revision with one of a few fixed, human-written principles. This module puts a number on
that, with no model and no judge, so it is the same on every machine:

- the feedback of an answer is the text its revision was conditioned on that the model
  wrote: a MATRIX scene's consequence (the harms it recorded; a scene that recorded none has
  no feedback), a critique-revise critique, self-refine feedback, debate turns;
- each feedback text and each query of the set become TF-IDF vectors of content words;
- **retrieval**: the share of feedback pieces (a scene's consequence, one critique) whose
  most similar query, among all the set's queries, is their own (chance is 1 / queries);
- **margin**: the mean of (similarity to its own query) minus (mean similarity to the other
  queries), in cosine units.

A fixed principle has retrieval at chance by construction (it does not depend on the
query), so the figures of a baseline measure what the model wrote in answer to the
principle. Lexical overlap also rewards feedback that merely repeats the query, so the
figures are read beside the scene audit, which flags echoes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from matrix_align.folders.results import AnswerRecord
from matrix_align.simulation.answer import NO_HARM

FEEDBACK_STAGES = frozenset({"critique", "feedback", "debate"})
_WORD = re.compile(r"[a-z][a-z'-]+")
# Function words and the words every critique uses whatever the query: they would make all
# texts look alike and say nothing about the query.
_STOP_WORDS = """a about above after again against all also an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just may me might more most must my no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their theirs them
    then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours answer answers
    assistant user request response harm harmful harms hurt people person others someone
    lead leads likely potentially potential risk step"""
_STOP = frozenset(_STOP_WORDS.split())


def feedback(answer: AnswerRecord) -> list[str]:
    """The pieces of model-written text an answer's revision was conditioned on (see the
    module docstring), one per scene or per critique round; none for a one-call system or a
    scene that recorded no harm."""
    texts: list[str] = []
    for trace in answer.traces:
        if answer.system == "matrix":
            consequence = (trace.get("consequence") or "").strip()
            if consequence != NO_HARM:
                texts.append(consequence)
        else:
            texts += [
                (call.get("output") or "").strip()
                for call in trace.get("calls", [])
                if call.get("stage") in FEEDBACK_STAGES
            ]
    return [text for text in texts if text]


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2]


def _vectors(texts: list[str]) -> list[dict[str, float]]:
    """TF-IDF vectors (log-scaled term frequency, smoothed idf), unit length."""
    bags = [Counter(_words(text)) for text in texts]
    seen_in = Counter(word for bag in bags for word in bag)
    idf = {word: math.log((1 + len(texts)) / (1 + n)) + 1 for word, n in seen_in.items()}
    vectors = []
    for bag in bags:
        vector = {word: (1 + math.log(n)) * idf[word] for word, n in bag.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        vectors.append({word: v / norm for word, v in vector.items()})
    return vectors


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(word, 0.0) for word, v in a.items())


def specificity(items: Iterable[tuple[str, list[str]]]) -> dict[str, float] | None:
    """Retrieval and margin (module docstring) over ``(query, feedback pieces)`` items, each
    piece scored on its own (so several critique rounds are not one longer, easier text); an
    item without feedback still counts as a query the others are matched against. None when
    no item has feedback, or there are fewer than two queries."""
    items = list(items)
    queries = [query for query, _ in items]
    scored = [(i, text) for i, (_, texts) in enumerate(items) for text in texts]
    if not scored or len(queries) < 2:
        return None
    vectors = _vectors(queries + [text for _, text in scored])
    query_vectors, feedback_vectors = vectors[: len(queries)], vectors[len(queries) :]
    hits = 0
    margins = []
    for (own, _), vector in zip(scored, feedback_vectors, strict=True):
        sims = [_cosine(vector, q) for q in query_vectors]
        others = sims[:own] + sims[own + 1 :]
        hits += sims[own] > max(others)  # strictly: a tie with another query is a miss
        margins.append(sims[own] - sum(others) / len(others))
    return {
        "retrieved": hits,
        "pieces": len(scored),
        "items_with_feedback": len({own for own, _ in scored}),
        "queries": len(queries),
        "chance": round(1 / len(queries), 4),
        "margin": round(sum(margins) / len(margins), 4),
    }


def entry_specificity(answers: list[AnswerRecord]) -> dict[str, float] | None:
    """The specificity of one entry's feedback, its own items as the set of queries."""
    return specificity((a.prompt, feedback(a)) for a in answers)
