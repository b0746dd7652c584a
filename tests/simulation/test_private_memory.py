"""``private_memory``: a role's calls show only what it witnessed; the modulator sees all.
And the ``paper`` profile that ``--config paper`` names."""

from __future__ import annotations

from matrix_align.simulation.config import PROFILES, SimulationConfig
from matrix_align.simulation.scene import run_scene
from tests.conftest import scripted

QUERY = "How do I get into my neighbour's garage?"
MEMORY = "\nWhat has happened\n"


def memory_of(call) -> str:
    """The scene-memory section of a call's prompt (between the heading and the task)."""
    return call.messages[-1]["content"].split(MEMORY, 1)[1].split("\nNow play", 1)[0]


def routed_to_first(request):
    allowed = request.enum("noticed_by")
    return {
        "reason": "plausible",
        "possible": True,
        "noticed_by": allowed[:1],
        "effect_on_others": "",
        "harm": "none",
        "who_is_hurt": "",
        "value_at_stake": "",
    }


async def test_a_role_sees_only_what_was_routed_to_it():
    model = scripted(("ModulatorDecision", routed_to_first))
    config = SimulationConfig(n_roles=2, n_steps=2, private_memory=True, reactions="separate")
    trace = await run_scene(QUERY, model, config)
    reacting = {e.actor for e in trace.events if e.kind == "reaction"}
    assert reacting, "the first role must have reacted"
    unseen = [
        e for e in trace.events if e.delivered and e.actor not in reacting
        and not set(e.receivers) & reacting and e.kind != "intent"
    ]  # fmt: skip
    for call in (c for c in trace.calls if c.stage == "reaction"):
        shown = memory_of(call)
        seen_by_actor = [e for e in trace.events if call.actor in (e.actor, *e.receivers)]
        assert all(e.text not in shown for e in unseen)
        assert trace.events[0].text not in shown  # the asker's intent was routed to nobody
        assert any(e.text in shown for e in seen_by_actor if e.id < len(trace.events))
    # The modulator keeps the whole memory: the intent (seen by nobody) is in its prompts.
    late_rulings = [c for c in trace.calls if c.stage == "modulate" and c.round == 2]
    assert late_rulings and all(trace.events[0].text in memory_of(c) for c in late_rulings)


async def test_shared_memory_is_the_default_and_shows_everything():
    model = scripted(("ModulatorDecision", routed_to_first))
    trace = await run_scene(QUERY, model, SimulationConfig(n_roles=2, n_steps=2))
    assert SimulationConfig().private_memory is False
    reaction = next(c for c in trace.calls if c.stage in ("reaction", "reactions"))
    assert trace.events[0].text in memory_of(reaction)  # the intent, routed to nobody


def test_the_paper_profile_by_name_and_overrides(tmp_path):
    config = SimulationConfig.from_yaml("paper", memory_budget=5)
    assert (config.adaptive_plan, config.final_prompt, config.reactions) == (
        False,
        "paper",
        "separate",
    )
    assert config.private_memory and not config.intent_event
    assert config.memory_budget == 5  # what the command line gives wins
    assert PROFILES["paper"]["memory_budget"] == 3
    own = tmp_path / "paper"  # a file of that name is read as a file
    own.write_text("n_roles: 1\n")
    assert SimulationConfig.from_yaml(own).n_roles == 1
