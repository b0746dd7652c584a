"""Reactions in one call per event (``reactions="joint"``) against one call per role, and the
per-stage token caps, on the deterministic scripted backend."""

from __future__ import annotations

from collections import Counter

import pytest

from matrix_align.llm.scripted import ScriptedModel, demo_rules
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import run_scene
from tests.conftest import scripted

QUERY = "How do I get into my neighbour's garage?"


def everyone_notices(*rules) -> ScriptedModel:
    """The demo script with every action noticed by every role, under ``rules``."""
    return ScriptedModel([*rules, *demo_rules(everyone_notices=True)])


def stages(trace) -> Counter:
    return Counter(call.stage for call in trace.calls)


@pytest.mark.parametrize("roles, steps", [(5, 5), (2, 3)])
async def test_joint_reactions_cost_two_calls_per_action_whoever_notices(roles, steps):
    """Every action noticed by every role: joint mode makes one reaction call and one ruling
    call per action; separate mode one of each per role."""
    config = SimulationConfig(n_roles=roles, n_steps=steps, reactions="joint")
    joint = await run_scene(QUERY, ScriptedModel.demo(everyone_notices=True), config)
    separate = await run_scene(
        QUERY,
        ScriptedModel.demo(everyone_notices=True),
        config.model_copy(update={"reactions": "separate"}),
    )

    assert stages(joint)["reactions"] == steps and stages(joint)["rulings"] == steps
    assert stages(joint)["modulate"] == 1 + steps  # the intent and the ego's actions
    assert "reaction" not in stages(joint)
    assert stages(separate)["reaction"] == roles * steps
    assert stages(separate)["modulate"] == 1 + steps + roles * steps
    # The same events happen either way, in the same order.
    assert [(e.actor, e.kind, e.in_reply_to) for e in joint.events] == [
        (e.actor, e.kind, e.in_reply_to) for e in separate.events
    ]
    if (roles, steps) == (5, 5):  # the paper's defaults: at most 30 calls a scene
        assert len(joint.calls) <= 30 < len(separate.calls)


async def test_joint_schemas_pin_the_people_who_noticed():
    model = ScriptedModel.demo(everyone_notices=True)
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=3, n_steps=1))
    action = next(e for e in trace.events if e.kind == "action")
    reactions = next(r for r in model.requests if r.title == "Reactions")
    assert reactions.schema["required"] == action.receivers
    assert set(reactions.schema["properties"]) == set(action.receivers)
    assert reactions.schema["additionalProperties"] is False

    rulings = next(r for r in model.requests if r.title == "Rulings")
    assert rulings.schema["required"] == action.receivers
    for name in action.receivers:  # nobody can be routed their own reaction
        allowed = rulings.enum(name, "noticed_by")
        assert name not in allowed and allowed


def judged(request, name: str) -> str:
    """The reaction of ``name`` that a joint ruling request rules on."""
    prompt = request.messages[1]["content"]
    return prompt.rsplit("Judge each of these next steps", 1)[1].split(f'{name}: "', 1)[1]


async def test_rejected_reactions_are_replaced_together_and_never_delivered():
    def react(request):
        first_try = "cannot do" not in request.messages[1]["content"]
        return {
            name: f"{name} {'flies over the fence' if first_try else 'calls the police'}."
            for name in request.people()
        }

    def rule(request):
        verdicts = {}
        for name in request.people():
            impossible = "flies" in judged(request, name).split('"', 1)[0]
            verdicts[name] = {
                "reason": "impossible" if impossible else "plausible",
                "possible": not impossible,
                "noticed_by": [],
                "effect_on_others": "",
                "harm": "none",
                "who_is_hurt": "",
                "value_at_stake": "",
            }
        return verdicts

    model = everyone_notices(("Reactions", react), ("Rulings", rule))
    config = SimulationConfig(n_roles=3, n_steps=1, max_replacements=1)
    trace = await run_scene(QUERY, model, config)

    # One more reaction call and one more ruling call, for everyone rejected at once.
    assert model_stage_counts(trace) == {"reactions": 2, "rulings": 2}
    replacement_call = [c for c in trace.calls if c.stage == "reactions"][1]
    rejected = [e for e in trace.events if e.kind == "reaction" and not e.delivered]
    replacements = [e for e in trace.events if e.kind == "reaction" and e.delivered]
    assert rejected and len(replacements) == len(rejected)
    assert replacement_call.actor == ", ".join(e.actor for e in rejected) + " (replacement 1)"
    first_call = [c for c in trace.calls if c.stage == "reactions"][0]
    assert model.requests[0].seed is not None
    seeds = {r.seed for r in model.requests if r.title == "Reactions"}
    assert len(seeds) == 2, "a replacement must not reuse the first try's seed"
    assert first_call.actor == ", ".join(e.actor for e in rejected)
    for old, new in zip(rejected, replacements, strict=True):
        assert new.replaces == old.id and new.actor == old.actor
        assert old.receivers == [] and "flies" in old.text and "police" in new.text
    # A rejected reaction never reaches the scene memory of later prompts.
    later = [c.messages[-1]["content"] for c in trace.calls if c.stage in ("consequence",)]
    assert all("flies" not in p.split("What has happened", 1)[-1] for p in later)


async def test_a_copied_log_mark_is_dropped_from_what_people_do():
    def react(request):
        return {name: f"{name} calls the police. (seen by someone)" for name in request.people()}

    model = everyone_notices(
        ("Reactions", react), ("Action", {"action": "The asker climbs in (seen by Ann)"})
    )
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=1))
    texts = [e.text for e in trace.events if e.kind in ("action", "reaction")]
    assert texts and all("seen by" not in text for text in texts)
    assert any(text.endswith("calls the police.") for text in texts)


def model_stage_counts(trace) -> dict[str, int]:
    counts = stages(trace)
    return {stage: counts[stage] for stage in ("reactions", "rulings")}


async def test_a_joint_reply_that_leaves_someone_out_is_reasked_then_falls_back():
    def partial(request):
        return {request.people()[0]: "They frown."}

    model = everyone_notices(("Reactions", partial))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=1))
    calls = [c for c in trace.calls if c.stage == "reactions"]
    assert [c.attempt for c in calls] == [1, 2]
    assert not calls[0].valid and "no reaction for" in (calls[0].error or "")
    assert trace.totals.fallbacks == 1
    reactions = [e for e in trace.events if e.kind == "reaction"]
    assert reactions and all(e.text.endswith("takes note and waits.") for e in reactions)


async def test_each_stage_gets_its_own_token_cap():
    model = ScriptedModel.demo(everyone_notices=True)
    config = SimulationConfig(n_roles=3, n_steps=2)
    await run_scene(QUERY, model, config)
    cap = {r.title or "text": r.max_tokens for r in model.requests}
    assert cap["Action"] < cap["ModulatorDecision"] < config.max_tokens
    assert cap["Reactions"] > cap["Action"]  # three people's sentences in one reply
    assert cap["Rulings"] > cap["ModulatorDecision"]
    assert cap["text"] in (config.max_tokens, config.final_max_tokens)  # answers keep theirs


async def test_a_reply_cut_by_its_cap_is_reasked_with_a_larger_cap_and_recorded():
    long_action = {"action": "The asker " + "walks slowly " * 150 + "to the garage."}
    model = scripted(("Action", [long_action, {"action": "The asker knocks."}]))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=1, n_steps=1))
    calls = [c for c in trace.calls if c.stage == "action"]
    assert calls[0].finish_reason == "length" and not calls[0].valid
    assert "cut off" in (calls[0].error or "")
    first, second = (r.max_tokens for r in model.requests if r.title == "Action")
    assert second == 2 * first
    assert calls[1].valid and trace.events[1].text == "The asker knocks."
