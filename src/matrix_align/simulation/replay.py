"""Replay: re-run only the late stages of a stored scene with other prompts or settings.

A scene's expensive part is the set-up and the rounds; the answer is decided in the last
few calls (``LATE_STAGES``: the harm votes, the consequence, the one-sentence summary of
the first answer, the final answer and the check of its alternative). Replaying those on
stored traces measures a change to the final step in minutes instead of hours, on exactly
the same scenes, so two designs are compared without the noise of re-simulating.
"""

from __future__ import annotations

import time
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel
from matrix_align.simulation.answer import check_alternative
from matrix_align.simulation.audit import audit_scene
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import LATE_STAGES, Scene
from matrix_align.simulation.trace import SceneTrace

# Settings that only the late stages read: the ones a replay may change.
REPLAYABLE = (
    "final_prompt",
    "keep_refusals",
    "check_alternative",
    "harm_votes",
    "final_max_tokens",
    "temperature",
    "seed",
)


def stored_config(trace: SceneTrace, **overrides: Any) -> SimulationConfig:
    """The settings a stored trace was made with (its recorded config), with ``overrides``."""
    stored = {k: v for k, v in trace.config.items() if k in SimulationConfig.model_fields}
    return SimulationConfig.build(**{**stored, **overrides})


async def replay(
    trace: SceneTrace,
    model: ChatModel,
    *,
    source: str | None = None,
    **overrides: Any,
) -> SceneTrace:
    """A copy of ``trace`` whose late stages were run again on ``model`` with ``overrides``
    (any of ``REPLAYABLE``, e.g. ``final_prompt="authors"``).

    The scene (set-up, roles, events, memory summaries) and its calls are kept as they
    were; the late stages' calls are replaced by the new ones, so the totals still count
    every call that produced the answer. ``source`` names where the trace came from.
    """
    unknown = sorted(set(overrides) - set(REPLAYABLE))
    if unknown:
        raise MatrixAlignError(
            f"Replay cannot change {', '.join(unknown)}: only the late stages are re-run.",
            hint=f"replayable settings: {', '.join(REPLAYABLE)}",
        )
    if not trace.plan and not trace.events:
        raise MatrixAlignError(
            "This trace holds no scene to replay.",
            hint="replay takes traces of `simulate`, or of the matrix mode of generate/evaluate",
        )
    config = stored_config(trace, **overrides)
    early_calls = [c for c in trace.calls if c.stage not in LATE_STAGES]
    early_wall = trace.totals.wall_time_s - sum(
        c.latency_s for c in trace.calls if c.stage in LATE_STAGES
    )
    copy = trace.model_copy(
        deep=True,
        update={
            "config": config.model_dump(),
            "calls": early_calls,
            "consequence": "",
            "initial_summary": "",
            "final_prompt": "",
            "decision": None,
            "final_response": "",
            "alternative": None,
            "flags": [],
            "replayed_from": source or trace.replayed_from or trace.started_at or "trace",
        },
    )
    scene = Scene.resume(copy, model, config)
    started = time.perf_counter()
    await scene.conclude()
    copy.recompute_totals(max(early_wall, 0.0) + time.perf_counter() - started)
    scene.finish()
    return copy


def first_decline(trace: SceneTrace) -> str | None:
    """The decline as the final step first wrote it, before any alternative check rewrote
    it; None when the scene helped or kept the first answer."""
    finals = [call.output for call in trace.calls if call.stage == "final"]
    if trace.decision is None or trace.decision.help or not finals:
        return None
    return finals[0]


async def recheck_alternative(
    trace: SceneTrace, model: ChatModel, *, harmful: bool | None = None, **overrides: Any
) -> SceneTrace:
    """A copy of ``trace`` whose alternative check (the stage after the final answer) was
    run again on the decline as first written, with ``overrides`` (e.g. ``prompts=DIR`` for
    another check template), and audited again (with the query's ``harmful`` label).

    Only the check's calls are new, so this brings a scene made before the check existed
    up to today's last stage without re-running anything else. A trace that did not
    decline comes back as a copy, audited again."""
    decline = first_decline(trace)
    copy = trace.model_copy(deep=True)
    if decline is not None:
        config = stored_config(trace, **{**overrides, "check_alternative": True})
        copy.config = config.model_dump()
        copy.final_response = decline
        copy.alternative = None
        # The first final call stays; a previous check and its rewrite are replaced.
        first_final = next(i for i, c in enumerate(copy.calls) if c.stage == "final")
        copy.calls = [
            c
            for i, c in enumerate(copy.calls)
            if c.stage not in ("final", "alternative") or i == first_final
        ]
        scene = Scene.resume(copy, model, config)
        started = time.perf_counter()
        await check_alternative(scene)
        copy.recompute_totals(trace.totals.wall_time_s + time.perf_counter() - started)
    copy.flags = audit_scene(copy, harmful=harmful)
    return copy
