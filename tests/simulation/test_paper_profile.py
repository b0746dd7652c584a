"""The ``paper`` profile: each of the paper's differences from our default is a switch of
its own, and ``--config paper`` turns every one to the paper's side (issue 24)."""

from __future__ import annotations

import re
from pathlib import Path

from matrix_align.simulation.answer import NO_HARM
from matrix_align.simulation.config import PROFILES, SimulationConfig
from matrix_align.simulation.scene import run_scene
from tests.conftest import scripted

QUERY = "How do I get into my neighbour's garage?"
METHOD = Path(__file__).parents[2] / "docs" / "method.md"
SMALL = {"n_roles": 2, "n_steps": 2}


def task(call) -> str:
    return call.messages[-1]["content"]


def judged(request) -> str:
    return request.messages[1]["content"].split("impartially:", 1)[1].split("Reply with:")[0]


def harmless_with_critique(request):
    """Every action harmless, with a critique all the same: the harm rating and the paper's
    free-text critique tell different stories."""
    return {
        "reason": "plausible",
        "possible": True,
        "noticed_by": request.enum("noticed_by")[:1],
        "effect_on_others": "",
        "harm": "none",
        "who_is_hurt": "",
        "value_at_stake": "it goes against respect for other people's property",
    }


async def test_the_plan_follows_the_first_answer():
    default = await run_scene(QUERY, scripted(), SimulationConfig(**SMALL))
    paper = await run_scene(QUERY, scripted(), SimulationConfig(**SMALL, plan_from="first_answer"))
    ours, theirs = (next(task(c) for c in t.calls if c.stage == "setup") for t in (default, paper))
    assert "follow the reply they got" in theirs
    assert "carry out exactly what they asked about" in ours
    assert "follow the reply" not in ours


async def test_no_intent_event():
    trace = await run_scene(QUERY, scripted(), SimulationConfig(**SMALL, intent_event=False))
    assert trace.events and all(e.kind != "intent" for e in trace.events)
    assert all(c.round != 0 for c in trace.calls)  # no ruling on an intent either
    default = await run_scene(QUERY, scripted(), SimulationConfig(**SMALL))
    assert default.events[0].kind == "intent"


async def test_critiques_feed_the_consequence():
    rule = ("ModulatorDecision", harmless_with_critique)
    config = SimulationConfig(**SMALL, reactions="separate")
    ours = await run_scene(QUERY, scripted(rule), config)
    assert ours.consequence == NO_HARM  # harmless ratings: no harm, the critique dropped
    theirs = await run_scene(
        QUERY, scripted(rule), config.model_copy(update={"consequence": "critiques"})
    )
    assert "respect for other people's property" in theirs.consequence
    asked = [task(c) for c in theirs.calls if c.stage == "modulate"]
    assert asked and all("whatever its harm rating" in prompt for prompt in asked)
    summary = next(c for c in theirs.calls if c.stage == "consequence")
    assert "drew a critique against widely shared human values" in task(summary)


def whisper_then_shout(request):
    """Round 1's action reaches the first person only; round 2's reaches everyone."""
    allowed = request.enum("noticed_by")
    return {
        "reason": "plausible",
        "possible": True,
        "noticed_by": allowed if "shouts" in judged(request) else allowed[:1],
        "effect_on_others": "",
        "harm": "none",
        "who_is_hurt": "",
        "value_at_stake": "",
    }


async def test_private_memory_under_joint_reactions_shows_each_call_its_own_events():
    model = scripted(
        (
            "Action",
            [
                {"action": "The asker whispers a plan."},
                {"action": "The asker shouts the plan."},
            ],
        ),
        ("ModulatorDecision", whisper_then_shout),
    )
    config = SimulationConfig(**SMALL, private_memory=True, reactions="joint")
    trace = await run_scene(QUERY, model, config)
    whisper = next(e for e in trace.events if "whispers" in e.text)
    first, second = (
        whisper.receivers[0],
        next(r.name for r in trace.roles if not r.is_ego and r.name != whisper.receivers[0]),
    )
    round_two = [c for c in trace.calls if c.stage == "reaction" and c.round == 2]
    # One call per person, never one for the group ("reactions").
    assert {c.actor for c in round_two} == {first, second}
    assert not any(c.stage == "reactions" for c in trace.calls)
    by_actor = {c.actor: task(c) for c in round_two}
    assert "whispers" in by_actor[first]  # the person who heard it remembers it
    assert "whispers" not in by_actor[second]  # the other never saw it
    assert any(c.stage == "rulings" and c.round == 2 for c in trace.calls)  # still joint


async def test_the_paper_final_prompt_has_a_worked_example():
    config = SimulationConfig(**SMALL, final_prompt="paper")
    trace = await run_scene(QUERY, scripted(), config)
    final = next(c for c in trace.calls if c.stage == "final")
    assert [m["role"] for m in final.messages] == ["user"]
    assert "This is how such an answer reads" in task(final) and QUERY in task(final)


async def test_config_paper_turns_every_switch_and_the_trace_says_so():
    config = SimulationConfig.load("paper", overrides=SMALL)
    trace = await run_scene(QUERY, scripted(), config)
    for key, value in PROFILES["paper"].items():
        assert trace.config[key] == SMALL.get(key, value), key
    assert all(e.kind != "intent" for e in trace.events)
    # The paper's templates are part of the hash that sample ids and folders compare.
    default = await run_scene(QUERY, scripted(), SimulationConfig(**SMALL))
    templates = "prompt_templates_sha256"
    assert trace.provenance[templates] != default.provenance[templates]


def test_the_paper_profile_matches_the_table_in_method_md():
    """docs/method.md's "Where we differ" table names, per row, the switch and its paper
    value; the profile sets exactly those."""
    section = METHOD.read_text("utf-8").split("## Where we differ from the paper", 1)[1]
    table = section.split("\n\n## ", 1)[0]
    documented: dict[str, object] = {}
    last_cells = [row.rsplit("|", 2)[-2] for row in table.splitlines() if row.startswith("| ")]
    for key, value in re.findall(r"`(\w+): ([\w.-]+)`", "\n".join(last_cells)):
        documented[key] = (
            int(value) if value.isdigit() else {"true": True, "false": False}.get(value, value)
        )
    assert documented == PROFILES["paper"]
