"""Two of the paper's training-time baselines that produce preference pairs, as ``generate``
answer modes (``--source NAME:rlcd``, ``--source NAME:rlaif``):

- **RLcd** (contrastive distillation, Yang et al. 2023): the same query answered twice, once
  under a system prompt that asks for a harmless, helpful answer and once under one that
  asks for a careless, harmful one. The first is chosen, the second rejected: the pair's
  direction comes from the prompts, with no labelling call.
- **RLAIF** (AI feedback, Bai et al. 2022; Lee et al. 2023): two answers sampled from the
  model as it is, then the model itself says which is better, asked in both orders; the pair
  is kept only when both orders agree (a small model often just prefers a position).

Each returns a ``SceneTrace`` whose ``final_response`` is the chosen answer and whose
``initial_response`` the rejected one, the same shape as a MATRIX sample (chosen = MATRIX
answer, rejected = first answer), so ``export --format preference`` writes the pairs and
``train --method dpo`` trains on them. When there is no pair (the two answers are equal, or
the labels disagree) the two sides are equal and the export leaves the sample out of the
preference rows. The user turn of every pair is the plain query: what the model learns is
to answer that query as the chosen side did, without the prompt that produced it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from matrix_align.data.prompts import render
from matrix_align.llm.base import ChatModel, Message
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.schemas import json_schema
from matrix_align.simulation.trace import SceneTrace

# RLAIF's two samples need to differ: drawn at best-of-n's default temperature, not at the
# scene's 0.2, at which a small model often writes the same answer twice.
SAMPLE_TEMPERATURE = 0.8
REASON_LIMIT = 300


class Label(BaseModel):
    reason: str
    better: int


def _trace(query: str, model: ChatModel, config: SimulationConfig, method: str) -> SceneTrace:
    return SceneTrace(
        query=query,
        config={
            "method": method,
            "seed": config.seed,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        },  # fmt: skip
        actor_model=getattr(model, "name", ""),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _finish(trace: SceneTrace, chosen: str, rejected: str, started: float) -> SceneTrace:
    trace.final_response, trace.initial_response = chosen.strip(), rejected.strip()
    trace.recompute_totals(time.perf_counter() - started)
    return trace


async def rlcd(query: str, model: ChatModel, config: SimulationConfig) -> SceneTrace:
    """The query under the harmless prompt (chosen) and under the harmful one (rejected)."""
    started = time.perf_counter()
    trace = _trace(query, model, config, "rlcd")
    calls = SceneCalls(trace, config)
    user: list[Message] = [{"role": "user", "content": query}]
    chosen, rejected = await calls.gather_in_order(
        [
            calls.text(
                model,
                [{"role": "system", "content": render(f"rlcd_{side}")}, *user],
                stage=f"rlcd_{side}",
                max_tokens=config.max_tokens,
            )
            for side in ("positive", "negative")
        ]
    )
    return _finish(trace, chosen, rejected, started)


async def rlaif(query: str, model: ChatModel, config: SimulationConfig) -> SceneTrace:
    """Two samples of the model's own answer, ranked by the model in both orders."""
    started = time.perf_counter()
    trace = _trace(query, model, config, "rlaif")
    sampling = SceneCalls(trace, config.model_copy(update={"temperature": SAMPLE_TEMPERATURE}))
    user: list[Message] = [{"role": "user", "content": query}]
    first, second = await sampling.gather_in_order(
        [
            sampling.text(model, user, stage="sample", round=i, max_tokens=config.max_tokens)
            for i in (1, 2)
        ]
    )
    if first.strip() == second.strip():
        return _finish(trace, first, first, started)  # nothing to rank: no pair
    calls = SceneCalls(trace, config)
    schema = json_schema(Label, {"reason": {"maxLength": REASON_LIMIT}, "better": {"enum": [1, 2]}})

    async def label(a: str, b: str, order: int) -> int | None:
        def check(value: Label) -> Label:
            if value.better not in (1, 2):
                raise ValueError("better must be 1 or 2")
            return value

        value, from_model = await calls.structured(
            model,
            [{"role": "user", "content": render("rlaif_label", query=query, first=a, second=b)}],
            Label,
            schema,
            stage="label",
            round=order,
            check=check,
            fallback=lambda: Label(reason="no valid label", better=0),
        )
        return value.better if from_model else None

    as_shown = await label(first, second, 1)
    swapped = await label(second, first, 2)
    if as_shown is None or swapped is None or as_shown == swapped:
        return _finish(trace, first, first, started)  # no label, or a position preferred
    chosen, rejected = (first, second) if as_shown == 1 else (second, first)
    return _finish(trace, chosen, rejected, started)
