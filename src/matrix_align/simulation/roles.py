"""The roles' turns: the ego carries out its plan, the others react to what they noticed.

Each proposal goes through the modulator. With ``--reactions joint`` (the default), everyone
who noticed an event reacts in one call and the modulator rules on all of them in one call;
with ``separate``, each reaction and each ruling is its own call, as in the paper. A
rejected proposal stays in the trace, marked rejected, and its actor may propose a
replacement (``max_replacements``), which is ruled on in turn. An actor sees the shared
scene memory in the prompt prefix, but is told to act only on the events it has witnessed
(its own memory), listed in its task. With ``private_memory`` a reaction's call shows only
its own person's events, so joint reactions are then asked one person per call.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from matrix_align.simulation import modulator
from matrix_align.simulation.schemas import Action, Reaction, Reactions, clip, json_schema
from matrix_align.simulation.trace import Event

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

Attempts = list[Event]  # one actor's attempts in order: rejected ones, then the delivered one
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
    attempts: Attempts = []
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
    return scene.add_attempts(attempts)


async def propose_reaction(scene: Scene, role: str, trigger: Event, round_no: int) -> Attempts:
    """A role's reaction to an event it noticed, with its attempts. Runs concurrently with the
    other reactions of the round, so it only returns events; the scene records them in order."""
    attempts: Attempts = []
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


async def react_jointly(scene: Scene, trigger: Event, round_no: int) -> list[Attempts]:
    """The reactions of everyone who noticed ``trigger``, from one call, ruled on in one call
    (``--reactions joint``; one model plays every role, so one reply can hold them all).
    People whose reactions were rejected propose replacements together, ruled on together,
    so a rejection adds two calls to the round, not two per person. Returns each person's
    attempts, in the order of the trigger's receivers."""
    people = [name for name in trigger.receivers if name != trigger.actor]
    attempts: dict[str, Attempts] = {name: [] for name in people}
    rejected: dict[str, Event] = {}
    pending = people
    for replacement in range(scene.config.max_replacements + 1):
        # The label names who speaks; a replacement's label differs from the first try's,
        # so its calls get their own seeds (the same seed tends to repeat the same reply).
        label = ", ".join(pending) + (f" (replacement {replacement})" if replacement else "")
        if scene.config.private_memory:
            texts = await _propose_privately(scene, pending, trigger, round_no, rejected)
        else:
            texts = await _propose_reactions(scene, pending, trigger, round_no, rejected, label)
        events = await modulator.moderate_all(
            scene, [(name, texts[name]) for name in pending], "reaction", round_no, label
        )
        rejected = {}
        for name, event in zip(pending, events, strict=True):
            event.in_reply_to = trigger.id
            attempts[name].append(event)
            if not event.verdict.feasible:
                rejected[name] = event
        pending = list(rejected)
        if not pending:
            break
    return [attempts[name] for name in people]


async def _propose_privately(
    scene: Scene, names: list[str], trigger: Event, round_no: int, rejected: dict[str, Event]
) -> dict[str, str]:
    """With ``private_memory``, each person's reaction from a call of its own, which shows
    only what that person witnessed: one call for several people would show each of them
    the others' events too. The rulings stay joint (the modulator sees everything)."""
    texts = await scene.calls.gather_in_order(
        [
            _propose(
                scene, name, round_no, "reaction", trigger=trigger, rejected=rejected.get(name)
            )
            for name in names
        ]
    )
    return dict(zip(names, texts, strict=True))


async def _propose_reactions(
    scene: Scene,
    names: list[str],
    trigger: Event,
    round_no: int,
    rejected: dict[str, Event],
    label: str,
) -> dict[str, str]:
    limit = scene.config.text_limit
    profiles = {r.name: r for r in scene.trace.roles}
    people = [
        {
            "name": name,
            "traits": profiles[name].traits,
            "status": profiles[name].status,
            "seen": [f"[{e.id}]" for e in scene.observations(name) if e.id != trigger.id],
            "rejected": rejected.get(name),
        }
        for name in names
    ]
    schema = {
        "title": "Reactions",
        "type": "object",
        "properties": {name: _starts_with(name, limit) for name in names},
        "required": names,
        "additionalProperties": False,
    }

    def check(value: Reactions) -> Reactions:
        texts = {name: _said(value.root.get(name, ""), limit) for name in names}
        empty = [name for name, text in texts.items() if not text]
        if empty:
            raise ValueError(f"no reaction for {', '.join(empty)}")
        return Reactions(texts)

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(
            scene.config.render("reactions", trigger=trigger, people=people), viewers=names
        ),
        Reactions,
        schema,
        stage="reactions",
        actor=label,
        round=round_no,
        max_tokens=scene.config.max_tokens * len(names),  # the cap per call is per person here
        check=check,
        fallback=lambda: Reactions({name: f"{name} takes note and waits." for name in names}),
    )
    return value.root


# The scene log marks who saw each event: "[4] Jo (in response to [3]): ... (seen by Ann)".
# Models copy that mark onto the end of what their person does; kept, it reaches the log
# twice ("(seen by Ann) (seen by Ann)") and says nothing the ruling does not decide.
_COPIED_LOG_MARK = re.compile(r"(\s*\(seen by [^()]*\))+\s*$")


def _said(text: str, limit: int) -> str:
    """What a person does, as one clipped line without a copied log mark."""
    return clip(_COPIED_LOG_MARK.sub("", text), limit)


def _starts_with(name: str, limit: int) -> dict[str, object]:
    """A reaction's schema: a line that begins with the person's name. Asked for several
    people at once, small models otherwise answered as the assistant ("I'm sorry, but I
    can't assist with that.") for everyone; made to begin with the name, they write what
    that person does. Names with regex-special characters get only the length cap."""
    schema: dict[str, object] = {"type": "string", "maxLength": limit}
    if re.fullmatch(r"[\w .'-]+", name):
        body = limit - len(name) - 1
        schema["pattern"] = f'^{name.replace(".", "[.]")} [^"\\\\\\n]{{0,{body}}}$'
    return schema


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
        task = scene.config.render(
            "action", actor=actor, round=round_no, step=step, observed=observed, rejected=rejected
        )
        output, field, fallback_text = Action, "action", step
    else:
        role = next(r for r in scene.trace.roles if r.name == actor)
        task = scene.config.render(
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
        text = _said(getattr(value, field), limit)
        if not text:
            raise ValueError(f"{field}: must not be empty")
        return output.model_validate({field: text})

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(task, viewers=[actor]),
        output,
        json_schema(output, {field: {"maxLength": limit}}),
        stage=kind,
        actor=actor,
        round=round_no,
        check=check,
        fallback=lambda: output.model_validate({field: clip(fallback_text, limit)}),
    )
    return getattr(value, field)
