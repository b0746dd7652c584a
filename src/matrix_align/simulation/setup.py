"""Scene set-up in two structured calls: (situation, ego, future, plan), then the roles.

The authors' code spent about a dozen free-text calls here and parsed them with regular
expressions; the same information fits in two schema-constrained calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from matrix_align.simulation.audit import role_as_name
from matrix_align.simulation.schemas import SceneRoles, SceneSetup, clip, json_schema
from matrix_align.simulation.trace import Role

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

NAME_LIMIT = 40
PROFILE_LIMIT = 120
NOT_A_STAKEHOLDER = {"user", "ego", "asker", "person who asked", "you", "i", "me"}
# What the plan carries out (``plan_from``): the request itself, from this answer or
# elsewhere (ours: a story of someone obeying a refusal shows no harm), or the first answer,
# which the user follows (the paper).
PLAN_TEMPLATES = {"request": "setup", "first_answer": "setup_first_answer"}
# The assistant that answered is not a character of the user's social world.
NOT_A_CHARACTER = re.compile(r"\b(ai|assistant|chatbot|language model)\b", re.IGNORECASE)


def name_key(name: str) -> str:
    """A name as compared for duplicates: case, a leading article and a final full stop
    ignored, so the asker "a teacher" is not cast again as the stakeholder "Teacher"."""
    return re.sub(r"^(?:a|an|the)\s+", "", name.strip(" .").casefold())


async def set_up(scene: Scene) -> None:
    await _situation_and_plan(scene)
    await _cast_roles(scene)


async def _situation_and_plan(scene: Scene) -> None:
    cfg, trace = scene.config, scene.trace
    schema = json_schema(
        SceneSetup,
        {
            "who_is_asking": {"maxLength": NAME_LIMIT},
            "situation": {"maxLength": cfg.text_limit},
            "next_steps": {"minItems": cfg.n_steps, "maxItems": cfg.n_steps},
            "next_steps.items": {"maxLength": cfg.text_limit},
            "outcome": {"maxLength": cfg.text_limit},
        },
    )

    def check(value: SceneSetup) -> SceneSetup:
        plan = [clip(step, cfg.text_limit) for step in value.next_steps if step.strip()]
        if not plan:
            raise ValueError("next_steps: at least one step is required")
        asker = clip(value.who_is_asking, NAME_LIMIT)
        if NOT_A_CHARACTER.search(asker):
            raise ValueError("who_is_asking: the person who sent the message, not the assistant")
        return SceneSetup(
            who_is_asking=asker or "the person who asked",
            situation=clip(value.situation, cfg.text_limit),
            next_steps=plan[: cfg.n_steps],
            outcome=clip(value.outcome, cfg.text_limit),
        )

    def fallback() -> SceneSetup:
        return SceneSetup(
            who_is_asking="the person who asked",
            situation="",
            next_steps=["They act on the answer."],
            outcome="",
        )

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(
            scene.config.render(PLAN_TEMPLATES[cfg.plan_from], n_steps=cfg.n_steps),
            with_memory=False,
        ),
        SceneSetup,
        schema,
        stage="setup",
        check=check,
        fallback=fallback,
    )
    trace.situation, trace.ego, trace.future = value.situation, value.who_is_asking, value.outcome
    trace.plan = value.next_steps


async def _cast_roles(scene: Scene) -> None:
    cfg, trace = scene.config, scene.trace
    # One person more than the scene needs: small models often list the asker among the
    # others ("Teacher" beside the ego "a teacher"), and the spare keeps the cast full
    # when that one is dropped. A spare left over is not cast.
    asked = cfg.n_roles + 1
    schema = json_schema(
        SceneRoles,
        {
            "people": {"minItems": asked, "maxItems": asked},
            "people.items.name": {"maxLength": NAME_LIMIT},
            "people.items.position": {"maxLength": PROFILE_LIMIT},
            "people.items.traits": {"maxLength": PROFILE_LIMIT},
            "asker.position": {"maxLength": PROFILE_LIMIT},
            "asker.traits": {"maxLength": PROFILE_LIMIT},
        },
    )

    # The fullest cast a reply gave: a re-ask that comes back no fuller never loses it.
    fullest = SceneRoles.model_validate({"people": [], "asker": {"position": "", "traits": ""}})
    fullest_rank = (0, 0)

    def check(value: SceneRoles) -> SceneRoles:
        nonlocal fullest, fullest_rank
        seen = {name_key(trace.ego)}
        asker_profile = {name_key(trace.ego), name_key(value.asker.position),
                         name_key(value.asker.traits)} - {""}  # fmt: skip
        named, named_by_role, lookalikes = [], [], []
        for person in value.people:
            name = clip(person.name, NAME_LIMIT)
            key = name_key(name)
            if not key or key in seen or key in NOT_A_STAKEHOLDER or NOT_A_CHARACTER.search(name):
                continue  # the ego is never duplicated as a stakeholder
            seen.add(key)
            person = person.model_copy(update={"name": name})
            # The asker listed again under a made-up name ("John", a teacher with the
            # asker's very traits, beside the asker "a teacher"): cast only to fill the scene.
            alike = {name_key(person.position), name_key(person.traits)} & asker_profile
            if alike:
                lookalikes.append(person)
            else:  # a spare with a real name is cast before one named by its role
                (named_by_role if role_as_name(name, person.position) else named).append(person)
        others = named + named_by_role
        cast = value.model_copy(update={"people": (others + lookalikes)[: cfg.n_roles]})
        rank = (len(cast.people), len(others))
        if rank > fullest_rank:
            fullest, fullest_rank = cast, rank
        if len(others) < cfg.n_roles:
            raise ValueError(
                f"people: only {len(others)} of them are someone other than {trace.ego}; name "
                f"{asked} different people other than {trace.ego} ({trace.ego} is the asker)"
            )
        return cast

    def fallback() -> SceneRoles:
        return fullest

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(
            scene.config.render("roles", n_roles=asked, ego=trace.ego), with_memory=False
        ),
        SceneRoles,
        schema,
        stage="roles",
        check=check,
        fallback=fallback,
    )
    trace.roles = [
        Role(
            name=trace.ego,
            is_ego=True,
            traits=clip(value.asker.traits, PROFILE_LIMIT),
            status=clip(value.asker.position, PROFILE_LIMIT),
        ),
        *(
            Role(
                name=p.name,
                traits=clip(p.traits, PROFILE_LIMIT),
                status=clip(p.position, PROFILE_LIMIT),
            )
            for p in value.people
        ),
    ]
