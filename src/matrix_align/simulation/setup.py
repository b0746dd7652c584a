"""Scene set-up in two structured calls: (situation, ego, future, plan), then the roles.

The authors' code spent about a dozen free-text calls here and parsed them with regular
expressions; the same information fits in two schema-constrained calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from matrix_align.simulation.prompts import render
from matrix_align.simulation.schemas import SceneRoles, SceneSetup, clip, json_schema
from matrix_align.simulation.trace import Role

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

NAME_LIMIT = 40
NOT_A_STAKEHOLDER = {"user", "the user", "ego", "the ego", "you", "i", "me"}
# The assistant that answered is not a character of the user's social world.
NOT_A_CHARACTER = re.compile(r"\b(ai|assistant|chatbot|language model)\b", re.IGNORECASE)


async def set_up(scene: Scene) -> None:
    await _situation_and_plan(scene)
    await _cast_roles(scene)


async def _situation_and_plan(scene: Scene) -> None:
    cfg, trace = scene.config, scene.trace
    schema = json_schema(
        SceneSetup,
        {
            "situation": {"maxLength": cfg.text_limit},
            "ego": {"maxLength": NAME_LIMIT},
            "future": {"maxLength": cfg.text_limit},
            "plan": {"minItems": cfg.n_steps, "maxItems": cfg.n_steps},
            "plan.items": {"maxLength": cfg.text_limit},
        },
    )

    def check(value: SceneSetup) -> SceneSetup:
        plan = [clip(step, cfg.text_limit) for step in value.plan if step.strip()]
        if not plan:
            raise ValueError("plan: at least one step is required")
        ego = clip(value.ego, NAME_LIMIT) or "the user"
        return SceneSetup(
            situation=clip(value.situation, cfg.text_limit),
            ego=ego,
            future=clip(value.future, cfg.text_limit),
            plan=plan[: cfg.n_steps],
        )

    def fallback() -> SceneSetup:
        return SceneSetup(
            situation="", ego="the user", future="", plan=["The user follows the first answer."]
        )

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(render("setup", n_steps=cfg.n_steps), with_memory=False),
        SceneSetup,
        schema,
        stage="setup",
        check=check,
        fallback=fallback,
    )
    trace.situation, trace.ego, trace.future = value.situation, value.ego, value.future
    trace.plan = value.plan


async def _cast_roles(scene: Scene) -> None:
    cfg, trace = scene.config, scene.trace
    schema = json_schema(
        SceneRoles,
        {
            "stakeholders": {"minItems": cfg.n_roles, "maxItems": cfg.n_roles},
            "stakeholders.items.name": {"maxLength": NAME_LIMIT},
            "stakeholders.items.traits": {"maxLength": 160},
            "stakeholders.items.status": {"maxLength": 160},
            "ego_profile.traits": {"maxLength": 160},
            "ego_profile.status": {"maxLength": 160},
        },
    )
    ego_key = trace.ego.casefold()

    def check(value: SceneRoles) -> SceneRoles:
        seen = {ego_key}
        kept = []
        for person in value.stakeholders:
            name = clip(person.name, NAME_LIMIT)
            key = name.casefold()
            if not name or key in seen or key in NOT_A_STAKEHOLDER or NOT_A_CHARACTER.search(name):
                continue  # the ego is never duplicated as a stakeholder
            seen.add(key)
            kept.append(person.model_copy(update={"name": name}))
        if not kept:
            raise ValueError("stakeholders: name at least one person other than the user")
        return value.model_copy(update={"stakeholders": kept[: cfg.n_roles]})

    def fallback() -> SceneRoles:
        return SceneRoles.model_validate(
            {"ego_profile": {"traits": "", "status": ""}, "stakeholders": []}
        )

    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(render("roles", n_roles=cfg.n_roles, ego=trace.ego), with_memory=False),
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
            traits=clip(value.ego_profile.traits, 160),
            status=clip(value.ego_profile.status, 160),
        ),
        *(
            Role(name=p.name, traits=clip(p.traits, 160), status=clip(p.status, 160))
            for p in value.stakeholders
        ),
    ]
