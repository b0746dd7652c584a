"""The scene's logic, on the deterministic scripted backend."""

from __future__ import annotations

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.answer import NO_HARM
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import run_scene
from matrix_align.simulation.trace import Event, SceneTrace
from tests.conftest import scripted

QUERY = "How do I get into my neighbour's garage?"
EMPTY_MEMORY = "Nothing yet."
MEMORY_HEADING = "\nWhat has happened\n"


def played(trace: SceneTrace) -> list[Event]:
    """The events of the rounds (the intent of round 0 left out)."""
    return [e for e in trace.events if e.kind != "intent"]


def judged_text(request) -> str:
    """The action a modulator request rules on (the scene prompt; a re-ask comes after it)."""
    task = request.messages[1]["content"]
    return task.split("Judge this next step impartially:", 1)[1].split("Reply with:")[0]


def decide(
    feasible_unless: str = "",
    receivers: list[str] | None = None,
    critique: str = "harm",
    harm: str | None = None,
):
    """A modulator reply that rejects actions containing ``feasible_unless``, routes to
    ``receivers`` (default: every candidate) and rates every action ``harm`` (default:
    serious when a critique is given, else none)."""

    def reply(request):
        infeasible = bool(feasible_unless) and feasible_unless in judged_text(request)
        allowed = request.enum("noticed_by")
        chosen = allowed if receivers is None else [r for r in receivers if r in allowed]
        rating = harm or ("serious" if critique else "none")
        return {
            "reason": "impossible here" if infeasible else "plausible",
            "possible": not infeasible,
            "noticed_by": chosen,
            "effect_on_others": "it affects the neighbour",
            "harm": rating,
            "who_is_hurt": "a neighbour" if rating != "none" else "",
            "value_at_stake": critique,
        }

    return reply


async def test_infeasible_action_is_rejected_and_not_delivered():
    model = scripted(
        (
            "Action",
            [
                {"action": "The asker teleports into the garage."},
                {"action": "The asker knocks on the door."},
            ],
        ),
        ("ModulatorDecision", decide(feasible_unless="teleports")),
    )
    config = SimulationConfig(n_roles=2, n_steps=1, reactions="separate")
    trace = await run_scene(QUERY, model, config)

    rejected, replacement = played(trace)[:2]
    assert not rejected.verdict.feasible and rejected.verdict.reason == "impossible here"
    assert rejected.receivers == []
    assert trace.critiques == ["harm"]  # the rejected action's harm did not happen
    assert replacement.replaces == rejected.id and replacement.verdict.feasible
    # Nobody reacts to the rejected action, and it never enters the scene memory.
    assert all(e.in_reply_to != rejected.id for e in trace.events)
    later_prompts = [c.messages[-1]["content"] for c in trace.calls if c.stage == "reaction"]
    assert later_prompts and all("teleports" not in p for p in later_prompts)


async def test_replacement_is_bounded_and_a_twice_rejected_action_is_dropped():
    model = scripted(
        ("Action", {"action": "The asker teleports again."}),
        ("ModulatorDecision", decide(feasible_unless="teleports", critique="")),
    )
    config = SimulationConfig(n_roles=2, n_steps=1, max_replacements=1)
    trace = await run_scene(QUERY, model, config)
    assert [e.verdict.feasible for e in played(trace)] == [False, False]
    assert trace.consequence == NO_HARM


async def test_routing_delivers_only_to_named_receivers():
    model = scripted(("ModulatorDecision", decide(receivers=["a family member"])))
    config = SimulationConfig(n_roles=3, n_steps=2, reactions="separate")
    trace = await run_scene(QUERY, model, config)

    for event in trace.events:
        assert set(event.receivers) <= {"a family member", "the asker"}
    reactors = {e.actor for e in trace.events if e.kind == "reaction"}
    assert reactors == {"a family member"}  # the neighbour and the official never heard
    reaction_calls = [c for c in trace.calls if c.stage == "reaction"]
    assert {c.actor for c in reaction_calls} == {"a family member"}


async def test_receivers_are_constrained_by_the_schema_enum():
    model = scripted(("ModulatorDecision", decide()))
    await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=1))
    request = next(r for r in model.requests if r.title == "ModulatorDecision")
    actor = judged_text(request).strip().split(":", 1)[0]
    allowed = request.enum("noticed_by")
    assert allowed and actor not in allowed


async def test_memory_is_summarised_when_over_budget():
    config = SimulationConfig(n_roles=2, n_steps=3, memory_budget=3)
    trace = await run_scene(QUERY, scripted(("ModulatorDecision", decide())), config)

    assert trace.memory_summaries, "memory over budget must be folded"
    fold = trace.memory_summaries[0]
    assert fold.through_event >= 4
    memory_calls = [c for c in trace.calls if c.stage == "memory"]
    assert len(memory_calls) == len(trace.memory_summaries)
    # After the fold, prompts show the summary instead of the folded events.
    last_action = [c for c in trace.calls if c.stage == "action"][-1].messages[-1]["content"]
    assert f"Earlier (through [{fold.through_event}])" in last_action
    assert "\n[1] " not in last_action


async def test_invalid_structured_output_is_reasked_once_then_falls_back():
    model = scripted(("ModulatorDecision", "this is not json"))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=1))

    modulate = [c for c in trace.calls if c.stage == "modulate"]
    assert [c.attempt for c in modulate[:2]] == [1, 2]
    assert not modulate[0].valid and not modulate[1].valid
    assert "not valid" in modulate[1].messages[-1]["content"]  # the re-ask says why
    assert trace.events[0].verdict.source == "fallback"
    assert trace.totals.fallbacks == len(trace.events)


async def test_a_valid_reply_after_the_reask_is_used():
    model = scripted(("ModulatorDecision", ["{bad", decide(critique="it scares the neighbour")]))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=1, n_steps=1, reaction_depth=0))
    assert trace.events[0].verdict.source == "model"
    assert trace.events[0].critique == "it scares the neighbour"
    assert trace.totals.fallbacks == 0


async def test_unknown_receiver_from_an_unconstrained_server_is_reasked():
    def bad_then_good(request):
        bad_then_good.calls += 1
        name = "the mayor" if bad_then_good.calls == 1 else request.enum("noticed_by")[0]
        return {
            "reason": "ok",
            "possible": True,
            "noticed_by": [name],
            "effect_on_others": "none",
            "harm": "none",
            "who_is_hurt": "",
            "value_at_stake": "",
        }

    bad_then_good.calls = 0
    model = scripted(("ModulatorDecision", bad_then_good))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=1, n_steps=1, reaction_depth=0))
    first = trace.calls[[c.stage for c in trace.calls].index("modulate")]
    assert not first.valid and "the mayor" in first.error
    assert played(trace)[0].receivers == ["a neighbour"]


async def test_same_seed_and_script_give_the_same_trace(small_config):
    first = await run_scene(QUERY, scripted(), small_config)
    second = await run_scene(QUERY, scripted(), small_config)
    strip = {
        "started_at": True,
        "totals": {"wall_time_s"},
        "calls": {"__all__": {"latency_s"}},
        "provenance": {"recorded_at"},  # a clock reading, to the second
    }
    assert first.model_dump(exclude=strip) == second.model_dump(exclude=strip)


async def test_seeds_differ_per_call_and_follow_the_config_seed(small_config):
    a, b = scripted(), scripted()
    await run_scene(QUERY, a, small_config)
    await run_scene(QUERY, b, small_config.model_copy(update={"seed": 7}))
    seeds_a = [r.seed for r in a.requests]
    assert len(set(seeds_a)) == len(seeds_a)
    assert seeds_a != [r.seed for r in b.requests]


async def test_trace_round_trips_through_json(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    again = SceneTrace.model_validate_json(trace.model_dump_json())
    assert again == trace
    assert again.critiques == trace.critiques


async def test_totals_match_the_recorded_calls(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    assert trace.totals.calls == len(trace.calls)
    assert trace.totals.prompt_tokens == sum(c.prompt_tokens for c in trace.calls)
    assert trace.totals.completion_tokens == sum(c.completion_tokens for c in trace.calls)


async def test_prompts_share_a_stable_prefix(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    scene_calls = [c for c in trace.calls if c.stage in {"action", "reaction", "modulate"}]
    header = scene_calls[0].messages[-1]["content"].split(MEMORY_HEADING)[0]
    assert "The people\n" in header
    for call in scene_calls:
        assert call.messages[0] == scene_calls[0].messages[0]
        assert call.messages[-1]["content"].startswith(header)
    # The memory only grows between folds: each prompt's memory extends the previous one.
    # (The memory runs from its heading to the blank line before the call's own task.)
    memories = [
        c.messages[-1]["content"].split(MEMORY_HEADING)[1].split("\n\n")[0] for c in scene_calls
    ]
    memories = [m.replace(EMPTY_MEMORY, "").rstrip() for m in memories]
    for earlier, later in zip(memories, memories[1:], strict=False):
        assert later.startswith(earlier)


async def test_ego_and_the_assistant_are_never_stakeholders():
    roles = {
        "people": [
            {"name": "The Asker", "position": "s", "traits": "t"},
            {"name": "the user", "position": "s", "traits": "t"},
            {"name": "The AI Assistant", "position": "s", "traits": "t"},
            {"name": "a landlord", "position": "s", "traits": "t"},
            {"name": "A Landlord", "position": "s", "traits": "t"},
        ],
        "asker": {"position": "tenant", "traits": "curious"},
    }
    trace = await run_scene(QUERY, scripted(("SceneRoles", roles)), SimulationConfig(n_steps=1))
    assert [r.name for r in trace.roles] == ["the asker", "a landlord"]
    assert trace.roles[0].is_ego


def person(name: str, position: str = "", traits: str = "") -> dict[str, str]:
    return {"name": name, "position": position or f"{name}'s job", "traits": traits or name}


async def test_the_cast_asks_for_a_spare_and_keeps_the_fullest_reply():
    """Small models list the asker among the others: one person more than the scene needs
    is asked for, so dropping the asker leaves the cast full; a reply still short is asked
    again, and the fuller of the two replies is kept, never an empty cast."""
    config = SimulationConfig(n_roles=2, n_steps=1)
    asker = {"position": "s", "traits": "t"}
    asker_listed = {"people": [person("The Asker"), person("Ana"), person("Ben")], "asker": asker}
    model = scripted(("SceneRoles", asker_listed))
    trace = await run_scene(QUERY, model, config)
    request = next(r for r in model.requests if r.title == "SceneRoles")
    assert request.count("people") == 3 and "the 3 people" in request.prompt
    assert [c.stage for c in trace.calls].count("roles") == 1
    assert [r.name for r in trace.roles] == ["the asker", "Ana", "Ben"]
    assert "short-cast" not in trace.flags

    one_other = {"people": [person("The Asker"), person("Ana"), person("ana")], "asker": asker}
    nobody = [person("the asker"), person("the user"), person("you")]
    none_other = {"people": nobody, "asker": asker}
    model = scripted(("SceneRoles", [one_other, none_other]))
    trace = await run_scene(QUERY, model, config)
    roles_calls = [c for c in trace.calls if c.stage == "roles"]
    assert len(roles_calls) == 2 and not any(c.valid for c in roles_calls)
    assert "only 1 of them" in (roles_calls[0].error or "")
    assert [r.name for r in trace.roles] == ["the asker", "Ana"]
    assert {"short-cast", "fallbacks"} <= set(trace.flags)


async def test_the_asker_listed_again_under_a_name_is_not_cast():
    """The asker "a teacher" listed among the others as "John", a teacher with the asker's
    very traits, is the asker again: the spare takes the place, or a re-ask's people."""
    config = SimulationConfig(n_roles=2, n_steps=1)
    asker = {"position": "Teacher", "traits": "patient, kind"}
    people = [person("John", "Teacher", "patient, kind"), person("Sarah", "Parent"),
              person("Tom", "Shop owner", "Patient, kind.")]  # fmt: skip
    setup = {"who_is_asking": "a teacher", "situation": "A class.", "next_steps": ["Teach."],
             "outcome": "Done."}  # fmt: skip
    casts = [{"people": people, "asker": asker},
             {"people": [people[1], person("Ana")], "asker": asker}]  # fmt: skip
    model = scripted(("SceneSetup", setup), ("SceneRoles", casts))
    trace = await run_scene(QUERY, model, config)
    assert [r.name for r in trace.roles] == ["a teacher", "Sarah", "Ana"]
    assert "identical-traits" not in trace.flags

    # Asked again and still no one else: the lookalike fills the scene rather than leave it
    # short.
    model = scripted(("SceneSetup", setup), ("SceneRoles", [casts[0], casts[0]]))
    trace = await run_scene(QUERY, model, config)
    assert [r.name for r in trace.roles] == ["a teacher", "Sarah", "John"]
    assert "short-cast" not in trace.flags and "identical-traits" in trace.flags


async def test_a_spare_with_a_name_is_cast_before_one_named_by_its_role():
    """ "Teacher", a teacher, is the role and not a name: the spare with a name takes the
    place; with no spare left, the one named by its role fills the scene and is flagged."""
    config = SimulationConfig(n_roles=2, n_steps=1)
    asker = {"position": "student", "traits": "curious"}
    people = [person("Teacher", "High school teacher"), person("Sarah", "Parent"),
              person("Tom", "Shop owner")]  # fmt: skip
    model = scripted(("SceneRoles", {"people": people, "asker": asker}))
    trace = await run_scene(QUERY, model, config)
    assert [r.name for r in trace.roles[1:]] == ["Sarah", "Tom"]
    assert "bad-role-names" not in trace.flags

    short = {"people": [people[0], people[1], person("the user")], "asker": asker}
    trace = await run_scene(QUERY, scripted(("SceneRoles", short)), config)
    assert [r.name for r in trace.roles[1:]] == ["Sarah", "Teacher"]
    assert [c.stage for c in trace.calls].count("roles") == 1  # no re-ask for a name
    assert "bad-role-names" in trace.flags and "short-cast" not in trace.flags


async def test_fixed_plan_uses_the_plan_steps_verbatim():
    config = SimulationConfig(n_roles=1, n_steps=2, adaptive_plan=False)
    trace = await run_scene(QUERY, scripted(), config)
    actions = [e.text for e in trace.events if e.kind == "action"]
    assert actions == trace.plan
    assert not [c for c in trace.calls if c.stage == "action"]


async def test_reaction_depth_two_lets_roles_answer_reactions():
    config = SimulationConfig(n_roles=2, n_steps=1, reaction_depth=2)
    trace = await run_scene(QUERY, scripted(("ModulatorDecision", decide())), config)
    reactions = [e for e in trace.events if e.kind == "reaction"]
    first_wave = {e.id for e in reactions if e.in_reply_to == played(trace)[0].id}
    assert any(e.in_reply_to in first_wave for e in reactions)


async def test_initial_response_can_be_supplied():
    model = scripted()
    trace = await run_scene(
        QUERY, model, SimulationConfig(n_roles=1, n_steps=1), initial_response="Use a crowbar."
    )
    assert trace.initial_response == "Use a crowbar."
    assert not [c for c in trace.calls if c.stage == "initial"]
    assert "Use a crowbar." in trace.calls[0].messages[-1]["content"]


async def test_harmless_scene_has_no_consequence_call_and_answers_helpfully():
    model = scripted(("ModulatorDecision", decide(critique="")))
    trace = await run_scene("What is 2 + 2?", model, SimulationConfig(n_roles=1, n_steps=1))
    assert trace.consequence == NO_HARM
    assert not [c for c in trace.calls if c.stage == "consequence"]
    assert trace.decision is not None and trace.decision.help
    final = next(c for c in trace.calls if c.stage == "final")
    assert "fully and helpfully" in final.messages[0]["content"]
    assert final.messages[-1] == {"role": "user", "content": "What is 2 + 2?"}


async def test_final_answer_is_the_consequence_aware_one(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    assert trace.final_response.startswith("I can't help with the risky part")
    assert trace.final_response != trace.initial_response


async def test_observer_sees_every_stage_in_order(small_config):
    kinds: list[str] = []
    await run_scene(QUERY, scripted(), small_config, on_event=lambda kind, _t: kinds.append(kind))
    assert kinds[0] == "initial" and kinds[1] == "setup"
    assert kinds[-2:] == ["consequence", "final"]
    assert "event" in kinds


async def test_empty_query_is_a_clear_error():
    with pytest.raises(MatrixAlignError, match="empty"):
        await run_scene("   ", scripted())


async def test_the_scene_opens_with_the_literal_request_rated_by_the_modulator():
    model = scripted(("ModulatorDecision", decide(feasible_unless="sets out")))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=1))
    intent = trace.events[0]
    assert intent.kind == "intent" and intent.round == 0 and intent.actor == trace.ego
    assert QUERY in intent.text and intent.harm == "serious"
    # The request was really sent: it happens whatever the verdict, and nobody reacts to it.
    assert intent.delivered and intent.receivers == []
    assert all(e.in_reply_to != intent.id for e in trace.events)
    actions = [c for c in trace.calls if c.stage == "action"]
    assert QUERY in actions[0].messages[-1]["content"].split(MEMORY_HEADING)[1]


async def test_a_string_cap_sits_above_the_limit_its_text_is_clipped_to(small_config):
    """A model at a string's cap fills the last characters with whatever fits (CJK after
    English); the cap is above the limit, so that tail is clipped away."""
    from matrix_align.simulation.modulator import REASON_LIMIT

    long_reason = "The plan is plausible for someone in this position " * 4 + "合法"

    def ruling(request):
        return {**decide()(request), "reason": long_reason}

    model = scripted(("ModulatorDecision", ruling))
    trace = await run_scene(QUERY, model, small_config)
    sent = next(r for r in model.requests if r.title == "ModulatorDecision")
    assert sent.schema["properties"]["reason"]["maxLength"] == int(REASON_LIMIT * 1.5)
    reasons = [e.verdict.reason for e in trace.events if e.verdict.source == "model"]
    assert reasons and all(len(r) <= REASON_LIMIT and "合" not in r for r in reasons)
