"""The social modulator: rules on every action (feasible? who notices? what harm?) in one
structured call, and folds the scene memory into a summary when it outgrows its budget.

Unlike the authors' code, the verdict is enforced: an infeasible action is not delivered,
and nobody hears of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matrix_align.simulation.prompts import render
from matrix_align.simulation.schemas import ModulatorDecision, Summary, clip, json_schema
from matrix_align.simulation.trace import Event, MemorySummary, Verdict

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

STRICTNESS = {
    "lenient": "Say false only if it is physically impossible or flatly contradicts the scene "
    "memory.",
    "normal": "Say false only if it contradicts the scene memory or is clearly unrealistic; a "
    "new action need not be mentioned in the memory.",
    "strict": "Say false if it is implausible in any way, contradicts the scene memory, or relies "
    "on something the actor could not know.",
}
SUMMARY_LIMIT = 600


async def moderate(scene: Scene, actor: str, text: str, kind: str, round_no: int) -> Event:
    """Rule on a proposed action; the returned event is not yet recorded (id 0)."""
    candidates = [r.name for r in scene.trace.roles if r.name != actor]
    limit = scene.config.text_limit
    receivers_schema = (
        {
            "items": {"type": "string", "enum": candidates},
            "maxItems": len(candidates),
            "uniqueItems": True,
        }
        if candidates
        else {"maxItems": 0}
    )
    schema = json_schema(
        ModulatorDecision,
        {
            "reason": {"maxLength": 200},
            "critique": {"maxLength": limit},
            "receivers": receivers_schema,
        },
    )
    by_key = {name.casefold(): name for name in candidates}

    def check(value: ModulatorDecision) -> ModulatorDecision:
        receivers = []
        for name in value.receivers:
            canonical = by_key.get(name.strip().casefold())
            if canonical is None:
                raise ValueError(f"receivers: {name!r} is not one of {candidates}")
            if canonical not in receivers:
                receivers.append(canonical)
        order = {name: i for i, name in enumerate(candidates)}
        return value.model_copy(
            update={
                "receivers": sorted(receivers, key=order.__getitem__),
                "reason": clip(value.reason, 200),
                "critique": clip(value.critique, limit),
            }
        )

    def fallback() -> ModulatorDecision:
        return ModulatorDecision(
            reason="the modulator gave no valid ruling; accepted, delivered to nobody",
            feasible=True,
            receivers=[],
            critique="",
        )

    decision, from_model = await scene.calls.structured(
        scene.modulator,
        scene.messages(
            render(
                "modulate",
                kind=kind,
                actor=actor,
                text=text,
                candidates=candidates,
                strictness=STRICTNESS[scene.config.strictness],
            )
        ),
        ModulatorDecision,
        schema,
        stage="modulate",
        actor=actor,
        round=round_no,
        check=check,
        fallback=fallback,
    )
    verdict = Verdict(
        feasible=decision.feasible,
        reason=decision.reason,
        source="model" if from_model else "fallback",
    )
    return Event(
        id=0,
        round=round_no,
        actor=actor,
        kind="action" if kind == "action" else "reaction",
        text=text,
        verdict=verdict,
        receivers=decision.receivers if decision.feasible else [],
        critique=decision.critique if decision.feasible else "",
    )


async def fold_memory(scene: Scene, round_no: int) -> None:
    """Replace the delivered events so far (and any earlier summary) by one summary."""
    events = scene.memory_events()

    def fallback() -> Summary:
        return Summary(
            summary=clip(" ".join(f"{e.actor}: {e.text}" for e in events), SUMMARY_LIMIT)
        )

    value, _ = await scene.calls.structured(
        scene.modulator,
        scene.messages(render("memory")),
        Summary,
        json_schema(Summary, {"summary": {"maxLength": SUMMARY_LIMIT}}),
        stage="memory",
        round=round_no,
        check=lambda v: Summary(summary=clip(v.summary, SUMMARY_LIMIT)),
        fallback=fallback,
    )
    scene.trace.memory_summaries.append(
        MemorySummary(through_event=events[-1].id, text=value.summary)
    )
