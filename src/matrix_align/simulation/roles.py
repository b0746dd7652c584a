"""The roles' turns: the ego carries out its plan, the others react to what they noticed.

Each proposal goes through the modulator. A rejected proposal stays in the trace, marked
rejected, and its actor may propose a replacement (``max_replacements``), which is ruled on
in turn. An actor sees the shared scene memory in the prompt prefix, but is told to act only
on the events it has witnessed (its own memory), listed in its task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matrix_align.simulation import modulator
from matrix_align.simulation.prompts import render
from matrix_align.simulation.schemas import Action, Reaction, clip, json_schema
from matrix_align.simulation.trace import Event

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

Outcome = list[Event]  # one actor's attempts in order: rejected ones, then the delivered one
INTENT_LIMIT = 600  # characters of the intent event, which quotes the query


async def state_intent(scene: Scene) -> Event:
    """Round 0: the asker sets out to do exactly what they asked, and the modulator rates it.

    Small models tend to retell a harmful request as a harmless one (the asker becomes a
    journalist studying its ethics), so a scene made only of planned steps can miss what
    the request itself would do. This event puts the literal request first in the scene's
    memory and records its harm. The request was really sent, so the event always happens:
    its feasibility verdict is recorded, not enforced, and nobody else notices it.
    """
    ego = scene.trace.ego
    text = clip(f'{ego} sets out to do what they asked: "{scene.trace.query}"', INTENT_LIMIT)
    event = await modulator.moderate(scene, ego, text, "intent", 0)
    event.verdict = event.verdict.model_copy(update={"feasible": True})
    event.receivers = []
    return scene.add_event(event)


async def ego_act(scene: Scene, ego: str, step: str, round_no: int) -> Event | None:
    """The ego's action for this round (adapted to what it observed, unless the plan is
    fixed), recorded with its attempts; the delivered event or None."""
    attempts: Outcome = []
    rejected: Event | None = None
    for _ in range(scene.config.max_replacements + 1):
        if scene.config.adaptive_plan or rejected is not None:
            text = await _propose(scene, ego, round_no, "action", step=step, rejected=rejected)
        else:
            text = clip(step, scene.config.text_limit)
        event = await modulator.moderate(scene, ego, text, "action", round_no)
        attempts.append(event)
        if event.verdict.feasible:
            break
        rejected = event
    return scene.add_outcome(attempts)


async def propose_reaction(scene: Scene, role: str, trigger: Event, round_no: int) -> Outcome:
    """A role's reaction to an event it noticed, with its attempts. Runs concurrently with the
    other reactions of the round, so it only returns events; the scene records them in order."""
    attempts: Outcome = []
    rejected: Event | None = None
    for _ in range(scene.config.max_replacements + 1):
        text = await _propose(scene, role, round_no, "reaction", trigger=trigger, rejected=rejected)
        event = await modulator.moderate(scene, role, text, "reaction", round_no)
        event.in_reply_to = trigger.id
        attempts.append(event)
        if event.verdict.feasible:
            break
        rejected = event
    return attempts


async def _propose(
    scene: Scene,
    actor: str,
    round_no: int,
    kind: str,
    *,
    step: str = "",
    trigger: Event | None = None,
    rejected: Event | None = None,
) -> str:
    limit = scene.config.text_limit
    observed = [e for e in scene.observations(actor) if trigger is None or e.id != trigger.id]
    if kind == "action":
        task = render(
            "action", actor=actor, round=round_no, step=step, observed=observed, rejected=rejected
        )
        output, field, fallback_text = Action, "action", step
    else:
        role = next(r for r in scene.trace.roles if r.name == actor)
        task = render(
            "reaction",
            actor=actor,
            traits=role.traits,
            status=role.status,
            observed=observed,
            trigger=trigger,
            rejected=rejected,
        )
        output, field, fallback_text = Reaction, "reaction", f"{actor} takes note and waits."

    def check(value):  # noqa: ANN001, ANN202 - Action or Reaction
        text = clip(getattr(value, field), limit)
        if not text:
            raise ValueError(f"{field}: must not be empty")
        return output.model_validate({field: text})

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(task),
        output,
        json_schema(output, {field: {"maxLength": limit}}),
        stage=kind,
        actor=actor,
        round=round_no,
        check=check,
        fallback=lambda: output.model_validate({field: clip(fallback_text, limit)}),
    )
    return getattr(value, field)
