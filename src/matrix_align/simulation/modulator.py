"""The social modulator: rules on every action (feasible? who notices? what harm?) in one
structured call (all reactions to one event in one call with ``--reactions joint``), and
folds the scene memory into a summary when it outgrows its budget.

Unlike the authors' code, the verdict is enforced: an infeasible action is not delivered,
and nobody hears of it. Harm is a typed rating (none, minor, serious) decided after a plain
description of the action's effect and before any critique; a critique on an action rated
harmless is dropped, so "this does no harm" can never reach the consequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matrix_align.simulation.schemas import (
    HarmRatings,
    ModulatorDecision,
    Rulings,
    Summary,
    clip,
    json_schema,
)
from matrix_align.simulation.trace import Event, EventKind, Harm, MemorySummary, Verdict

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

# The feasibility instruction per strictness. Small models reject harmful or unusual actions
# as "unrealistic", which would hide exactly the harms the scene exists to find, so every
# level says that illegal or harmful actions can still happen.
STRICTNESS = {
    "lenient": "true unless it is physically impossible (illegal, harmful or unusual actions "
    "are possible).",
    "normal": "true unless it is physically impossible or contradicts what has happened "
    "(illegal, harmful or unusual actions are possible).",
    "strict": "true only if it is plausible, fits what has happened, and relies only on what "
    "the person could know (illegal or harmful actions can be plausible).",
}
SUMMARY_LIMIT = 600
REASON_LIMIT = 160
HARMED_LIMIT = 80


def _ruling_schema(candidates: list[str], limit: int) -> dict[str, Any]:
    """The schema of one ruling on an action of someone not in ``candidates`` (the people
    who could notice it): receivers drawn from them, every string capped."""
    receivers_schema = (
        {
            "items": {"type": "string", "enum": candidates},
            "maxItems": len(candidates),
            "uniqueItems": True,
        }
        if candidates
        else {"maxItems": 0}
    )
    return json_schema(
        ModulatorDecision,
        {
            "reason": {"maxLength": REASON_LIMIT},
            "noticed_by": receivers_schema,
            "effect_on_others": {"maxLength": REASON_LIMIT},
            "who_is_hurt": {"maxLength": HARMED_LIMIT},
            "value_at_stake": {"maxLength": limit},
        },
    )


def _checked(
    value: ModulatorDecision, candidates: list[str], limit: int, every_critique: bool = False
) -> ModulatorDecision:
    """A ruling with receivers named as the scene names them (in scene order), strings
    clipped, and harm details dropped from a ruling of no harm (the critique is kept with
    ``every_critique``: the paper's consequence is made of every action's critique)."""
    by_key = {name.casefold(): name for name in candidates}
    receivers = []
    for name in value.noticed_by:
        canonical = by_key.get(name.strip().casefold())
        if canonical is None:
            raise ValueError(f"receivers: {name!r} is not one of {candidates}")
        if canonical not in receivers:
            receivers.append(canonical)
    order = {name: i for i, name in enumerate(candidates)}
    harmful = value.harm != "none"
    return value.model_copy(
        update={
            "noticed_by": sorted(receivers, key=order.__getitem__),
            "reason": clip(value.reason, REASON_LIMIT),
            "effect_on_others": clip(value.effect_on_others, REASON_LIMIT),
            "who_is_hurt": clip(value.who_is_hurt, HARMED_LIMIT) if harmful else "",
            "value_at_stake": (
                clip(value.value_at_stake, limit) if harmful or every_critique else ""
            ),
        }
    )


NO_RULING = ModulatorDecision(
    reason="no valid ruling was given; accepted, seen by nobody",
    possible=True,
    noticed_by=[],
    effect_on_others="",
    harm="none",
    who_is_hurt="",
    value_at_stake="",
)


def _event(
    actor: str, text: str, kind: EventKind, round_no: int, decision: ModulatorDecision, source: str
) -> Event:
    """The proposed action as an event carrying its ruling; not yet recorded (id 0)."""
    return Event(
        id=0,
        round=round_no,
        actor=actor,
        kind=kind,
        text=text,
        verdict=Verdict(feasible=decision.possible, reason=decision.reason, source=source),
        receivers=decision.noticed_by if decision.possible else [],
        effect=decision.effect_on_others,
        harm=decision.harm,
        harmed=decision.who_is_hurt,
        critique=decision.value_at_stake,
    )


def _template(scene: Scene, name: str) -> str:
    """The ruling's template: with ``consequence: critiques`` the variant that asks for a
    critique of every action, whatever its harm rating, as the paper's modulator wrote."""
    return f"{name}_critique" if scene.config.consequence == "critiques" else name


def _others(scene: Scene, actor: str) -> list[str]:
    return [r.name for r in scene.trace.roles if r.name != actor]


async def moderate(scene: Scene, actor: str, text: str, kind: EventKind, round_no: int) -> Event:
    """Rule on one proposed action; the returned event is not yet recorded (id 0)."""
    candidates = _others(scene, actor)
    limit = scene.config.text_limit
    every = scene.config.consequence == "critiques"
    decision, from_model = await scene.calls.structured(
        scene.modulator,
        scene.messages(
            scene.config.render(
                _template(scene, "modulate"),
                kind=kind,
                actor=actor,
                text=text,
                candidates=candidates,
                strictness=STRICTNESS[scene.config.strictness],
            )
        ),
        ModulatorDecision,
        _ruling_schema(candidates, limit),
        stage="modulate",
        actor=actor,
        round=round_no,
        check=lambda value: _checked(value, candidates, limit, every),
        fallback=lambda: NO_RULING,
    )
    return _event(actor, text, kind, round_no, decision, "model" if from_model else "fallback")


async def moderate_all(
    scene: Scene, proposals: list[tuple[str, str]], kind: EventKind, round_no: int, label: str
) -> list[Event]:
    """Rule on several people's proposed actions in one call (``--reactions joint``): one
    ruling per person, pinned by the schema (a property per name, in order), each ruling
    exactly as ``moderate`` gives it. Events are returned in the order of ``proposals``;
    ``label`` names the call in the trace (and seeds it)."""
    if len(proposals) == 1:
        return [await moderate(scene, *proposals[0], kind, round_no)]
    limit = scene.config.text_limit
    every = scene.config.consequence == "critiques"
    names = [actor for actor, _ in proposals]
    candidates = {actor: _others(scene, actor) for actor in names}
    schema = {
        "title": "Rulings",
        "type": "object",
        "properties": {name: _ruling_schema(candidates[name], limit) for name in names},
        "required": names,
        "additionalProperties": False,
    }

    def check(value: Rulings) -> Rulings:
        missing = [name for name in names if name not in value.root]
        if missing:
            raise ValueError(f"a ruling is missing for {', '.join(missing)}")
        return Rulings(
            {name: _checked(value.root[name], candidates[name], limit, every) for name in names}
        )

    rulings, from_model = await scene.calls.structured(
        scene.modulator,
        scene.messages(
            scene.config.render(
                _template(scene, "modulate_all"),
                kind=kind,
                proposals=proposals,
                strictness=STRICTNESS[scene.config.strictness],
            )
        ),
        Rulings,
        schema,
        stage="rulings",
        actor=label,
        round=round_no,
        max_tokens=scene.config.max_tokens * len(names),  # the cap per call is per person here
        check=check,
        fallback=lambda: Rulings(dict.fromkeys(names, NO_RULING)),
    )
    source = "model" if from_model else "fallback"
    return [
        _event(actor, text, kind, round_no, rulings.root[actor], source)
        for actor, text in proposals
    ]


# Re-ratings are independent samples, so they are drawn with more spread than the scene's
# low temperature: at 0.2 two re-ratings of the same prompt are nearly always one rating
# twice, and the vote would be the re-rating prompt's word against the ruling.
VOTE_TEMPERATURE = 0.7
HARM_ORDER: dict[Harm, int] = {"none": 0, "minor": 1, "serious": 2}


async def vote_harms(scene: Scene) -> None:
    """``harm_votes`` > 1: re-rate the harm of every delivered event, ``harm_votes`` - 1
    times, each an independent call on the whole scene, and settle each event's harm as the
    median of its ruling and the re-ratings (``Event.votes`` keeps them all). One noisy
    rating then no longer decides alone: a single "serious" among "none"s is outvoted, and
    a harm the ruling missed can still be found. A re-rating that fails twice is left out."""
    events = [e for e in scene.trace.events if e.delivered]
    for event in events:  # a replay votes again from the ruling
        event.harm, event.votes = event.ruling_harm, []
    if scene.config.harm_votes == 1 or not events:
        return
    keys = [str(e.id) for e in events]
    schema = {
        "title": "HarmRatings",
        "type": "object",
        "properties": {key: {"enum": list(HARM_ORDER)} for key in keys},
        "required": keys,
        "additionalProperties": False,
    }
    messages = scene.messages(scene.config.render("harm_votes", events=events), with_memory=False)

    def check(value: HarmRatings) -> HarmRatings:
        missing = [key for key in keys if key not in value.root]
        if missing:
            raise ValueError(f"no rating for event(s) {', '.join(missing)}")
        return value

    async def rate(number: int) -> HarmRatings | None:
        value, from_model = await scene.calls.structured(
            scene.modulator, messages, HarmRatings, schema, stage="votes", round=number,
            check=check, temperature=VOTE_TEMPERATURE, fallback=lambda: HarmRatings({}),
        )  # fmt: skip
        return value if from_model else None

    ratings = await scene.calls.gather_in_order(
        [rate(n) for n in range(1, scene.config.harm_votes)]
    )
    for event in events:
        votes: list[Harm] = [event.harm]
        votes += [r.root[str(event.id)] for r in ratings if r is not None]
        event.votes = votes
        event.harm = sorted(votes, key=HARM_ORDER.__getitem__)[len(votes) // 2]


async def fold_memory(scene: Scene, round_no: int) -> None:
    """Replace the delivered events so far (and any earlier summary) by one summary."""
    events = scene.memory_events()

    def fallback() -> Summary:
        return Summary(
            summary=clip(" ".join(f"{e.actor}: {e.text}" for e in events), SUMMARY_LIMIT)
        )

    value, _ = await scene.calls.structured(
        scene.modulator,
        scene.messages(scene.config.render("memory")),
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
