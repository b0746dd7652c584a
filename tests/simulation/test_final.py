"""The final step: the help-or-decline decision, the three final-answer designs, replay, and
prompts free of the simulator's machinery words (scripted backend)."""

from __future__ import annotations

import re

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.answer import MAX_HARMS, decide, listed_harms, suggesting_sentences
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.replay import first_decline, recheck_alternative, replay
from matrix_align.simulation.scene import LATE_STAGES, run_scene
from matrix_align.simulation.trace import Event, SceneTrace, Verdict
from matrix_align.systems import respond_full
from tests.conftest import scripted
from tests.simulation.test_scene import QUERY
from tests.simulation.test_scene import decide as modulator_reply

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = "Sure: first, wait until they are out."


def scene_with(first: str, *harms: str, delivered: bool = True) -> SceneTrace:
    events = [
        Event(
            id=i + 1,
            round=1,
            actor="the asker",
            kind="action",
            text=f"step {i + 1}",
            verdict=Verdict(feasible=delivered),
            harm=harm,
            critique="it hurts" if harm != "none" else "",
        )
        for i, harm in enumerate(harms)
    ]
    return SceneTrace(query=QUERY, initial_response=first, events=events)


@pytest.mark.parametrize(
    ("first", "harms", "keep", "helps", "basis"),
    [
        (COMPLIANCE, ["none", "serious"], True, False, "serious harm"),
        (REFUSAL, ["none", "serious"], False, False, "serious harm"),
        (REFUSAL, ["none", "none"], True, False, "refusal kept"),
        (REFUSAL, ["minor", "none"], False, False, "refusal kept"),
        (REFUSAL, ["none", "none"], False, True, "no harm"),
        (COMPLIANCE, ["minor"], True, True, "minor harm"),
        (COMPLIANCE, ["none"], True, True, "no harm"),
    ],
)
def test_decision_from_the_harm_ratings(first, harms, keep, helps, basis):
    decision = decide(scene_with(first, *harms), keep_refusals=keep)
    assert decision.help is helps and decision.basis == basis


def test_harm_of_a_rejected_action_does_not_count():
    assert decide(scene_with(COMPLIANCE, "serious", delivered=False)).help


def test_a_critique_on_an_action_rated_harmless_never_reaches_the_consequence():
    trace = scene_with(COMPLIANCE, "none", "serious")
    trace.events[0].critique = "This does not harm anyone."
    assert trace.critiques == ["it hurts"]


def test_a_consequence_lists_the_most_serious_harms_and_counts_the_rest():
    ratings = ["minor"] * 3 + ["serious"] * MAX_HARMS + ["none"]
    trace = scene_with(COMPLIANCE, *ratings)
    for i, event in enumerate(trace.events):
        event.critique = f"harm {i}"
    serious = [f"harm {i}." for i in range(3, 3 + MAX_HARMS)]
    assert trace.harms == serious + ["harm 0.", "harm 1.", "harm 2."]
    assert listed_harms(trace) == [*serious, "And 3 more harms."]
    assert listed_harms(scene_with(COMPLIANCE, "minor")) == ["it hurts."]


async def test_verdict_design_declines_with_the_consequence_in_the_system_prompt(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    assert trace.final_prompt == "verdict" and trace.decision and not trace.decision.help
    final = next(c for c in trace.calls if c.stage == "final")
    system = final.messages[0]["content"]
    assert "would cause harm" in system and trace.harms[0] in system
    assert final.messages[1:] == [{"role": "user", "content": QUERY}]


async def test_system_design_puts_draft_summary_and_consequence_in_the_system_prompt():
    config = SimulationConfig(n_roles=2, n_steps=1, final_prompt="system")
    trace = await run_scene(QUERY, scripted(), config)
    final = next(c for c in trace.calls if c.stage == "final")
    assert trace.decision is None and final.messages[0]["role"] == "system"
    assert trace.initial_summary in final.messages[0]["content"]
    assert trace.consequence in final.messages[0]["content"]


async def test_authors_design_sends_all_context_in_one_user_turn():
    config = SimulationConfig(n_roles=2, n_steps=1, final_prompt="authors")
    trace = await run_scene(QUERY, scripted(), config)
    final = next(c for c in trace.calls if c.stage == "final")
    assert [m["role"] for m in final.messages] == ["user"]
    content = final.messages[0]["content"]
    assert QUERY in content and trace.consequence in content and "updated response" in content


async def test_replay_reruns_only_the_late_stages(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    model = scripted()
    again = await replay(trace, model, final_prompt="authors", source="scene.json")

    early = [c for c in trace.calls if c.stage not in LATE_STAGES]
    assert again.calls[: len(early)] == early
    # The authors' design writes no typed decline, so no alternative is checked; one harm
    # rating (the default) makes no vote.
    assert {c.stage for c in again.calls[len(early) :]} == set(LATE_STAGES) - {
        "alternative",
        "votes",
    }
    assert {r.title or "final" for r in model.requests} <= {"Summary", "final"}
    assert again.events == trace.events and again.roles == trace.roles
    assert again.final_prompt == "authors" and again.config["final_prompt"] == "authors"
    assert again.replayed_from == "scene.json"
    assert again.totals.calls == len(again.calls)
    assert trace.final_prompt == "verdict"  # the stored trace is left as it was


async def test_replay_refuses_settings_of_the_early_stages(small_config):
    trace = await run_scene(QUERY, scripted(), small_config)
    with pytest.raises(MatrixAlignError, match="n_roles"):
        await replay(trace, scripted(), n_roles=3)
    with pytest.raises(MatrixAlignError, match="no scene"):
        await replay(SceneTrace(query=QUERY), scripted())


async def test_the_first_answer_is_seeded_like_vanilla_s_answer(small_config):
    """So in an evaluation MATRIX starts from the very answer it is compared with."""
    vanilla, matrix = scripted(), scripted()
    await respond_full("vanilla", QUERY, vanilla, small_config)
    await respond_full("matrix", QUERY, matrix, small_config)
    assert matrix.requests[0].messages == vanilla.requests[0].messages
    assert matrix.requests[0].seed == vanilla.requests[0].seed


MACHINERY = re.compile(
    r"\b(modulator|ego|scene memory|receivers?|stakeholders?|simulat\w*|task)\b", re.I
)


async def test_scene_prompts_never_show_the_simulator_s_machinery_words():
    """The characters and the judge see plain words only, whatever the design."""
    config = SimulationConfig(n_roles=2, n_steps=2, reaction_depth=2, memory_budget=2)
    for design in ("verdict", "authors"):
        model = scripted(("ModulatorDecision", modulator_reply()))
        await run_scene(QUERY, model, config.model_copy(update={"final_prompt": design}))
        for request in model.requests:
            for message in request.messages:
                assert not MACHINERY.search(message["content"]), message["content"]


async def test_a_refusal_kept_without_recorded_harm_stands_as_it_was():
    config = SimulationConfig(n_roles=1, n_steps=1)
    model = scripted(("ModulatorDecision", modulator_reply(critique="")))
    trace = await run_scene(QUERY, model, config, initial_response=REFUSAL)
    assert trace.decision and trace.decision.basis == "refusal kept"
    assert trace.final_response == REFUSAL
    assert not [c for c in trace.calls if c.stage == "final"]


def test_harms_say_what_happened_and_to_whom():
    trace = scene_with(COMPLIANCE, "serious", "serious", "none")
    trace.events[0].effect, trace.events[0].harmed = "It scares the neighbour.", "the neighbour"
    trace.events[1].effect = "It scares the neighbour."
    trace.events[1].harmed = "the neighbour"
    assert trace.harms == ["It scares the neighbour (hurt: the neighbour)."]


HARMFUL_ALTERNATIVE = {
    "suggestion": "Ask a friend to get the key for you while they are out.",
    "what_follows": "The neighbour's garage is entered without their consent.",
    "harm": "serious",
}


async def test_a_decline_s_alternative_is_checked_and_kept_when_harmless(small_config):
    """The demo's scene declines; its alternative is rated harmless and the decline stands."""
    trace = await run_scene(QUERY, scripted(), small_config)
    assert trace.decision is not None and not trace.decision.help
    assert [c.stage for c in trace.calls][-2:] == ["final", "alternative"]
    assert trace.alternative is not None and not trace.alternative.dropped
    assert "harmful-alternative" not in trace.flags


async def test_a_harmful_alternative_is_dropped_and_flagged(small_config):
    model = scripted(("AlternativeRuling", HARMFUL_ALTERNATIVE))
    trace = await run_scene(QUERY, model, small_config)
    assert [c.stage for c in trace.calls][-2:] == ["final", "alternative"]
    decline = "I can't help with the risky part of this, because it would put others at risk."
    assert trace.calls[-2].output == f"{decline} Instead, ask the people it affects first."
    assert trace.alternative is not None and trace.alternative.dropped
    assert trace.alternative.suggestion == HARMFUL_ALTERNATIVE["suggestion"]
    assert trace.final_response == decline  # the suggesting sentence is cut, no new call
    assert "harmful-alternative" in trace.flags
    # Replay without the check writes the one decline and no ruling.
    again = await replay(trace, scripted(("AlternativeRuling", HARMFUL_ALTERNATIVE)),
                         check_alternative=False)  # fmt: skip
    assert again.alternative is None and "harmful-alternative" not in again.flags
    assert [c.stage for c in again.calls].count("alternative") == 0


async def test_a_scene_made_before_the_check_gets_only_the_check(small_config):
    """``recheck_alternative`` runs the check on the decline as first written: no other
    call is made again, a harmful alternative is cut away, the audit flags it."""
    unchecked = small_config.model_copy(update={"check_alternative": False})
    trace = await run_scene(QUERY, scripted(), unchecked)
    decline = first_decline(trace)
    assert decline == trace.final_response and trace.alternative is None
    model = scripted(("AlternativeRuling", HARMFUL_ALTERNATIVE))
    checked = await recheck_alternative(trace, model, harmful=True)
    assert [r.title for r in model.requests] == ["AlternativeRuling"]
    assert checked.calls[: len(trace.calls)] == trace.calls
    assert [c.stage for c in checked.calls][len(trace.calls) :] == ["alternative"]
    assert checked.alternative is not None and checked.alternative.dropped
    assert checked.final_response == decline.split(" Instead")[0]
    assert "harmful-alternative" in checked.flags
    assert checked.config["check_alternative"] and trace.alternative is None
    # Checked again (another template, say): the first decline is rated, not the rewrite.
    again = await recheck_alternative(checked, scripted())
    assert first_decline(checked) == decline and again.final_response == decline
    assert [c.stage for c in again.calls].count("final") == 1
    assert again.alternative is not None and not again.alternative.dropped
    # A scene that helped is only audited again.
    helping = scripted(("ModulatorDecision", modulator_reply(harm="none")))
    config = SimulationConfig(n_roles=1, n_steps=1, reaction_depth=0, check_alternative=False)
    helped = await run_scene(QUERY, helping, config)
    assert helped.decision is not None and helped.decision.help
    assert (await recheck_alternative(helped, scripted())).calls == helped.calls


async def test_help_and_kept_refusals_are_not_checked():
    helping = scripted(("ModulatorDecision", modulator_reply(harm="none")))
    config = SimulationConfig(n_roles=1, n_steps=1, reaction_depth=0)
    trace = await run_scene(QUERY, helping, config)
    assert trace.decision is not None and trace.decision.help
    assert trace.alternative is None and "alternative" not in {c.stage for c in trace.calls}
    refusing = scripted(("ModulatorDecision", modulator_reply(harm="none")), (QUERY, REFUSAL))
    kept = await run_scene(QUERY, refusing, config)
    assert kept.decision is not None and kept.decision.basis == "refusal kept"
    assert kept.alternative is None and kept.final_response == REFUSAL


async def test_a_decline_that_suggests_nothing_is_not_checked(small_config):
    """The check rates only a decline that suggests something: asked about a reply that
    suggests nothing, a small model invents a suggestion and rates it."""
    plain = "I can't help with this. It would put the neighbour at risk."
    model = scripted((QUERY, ["Here is a direct answer to the question.", plain]))
    trace = await run_scene(QUERY, model, small_config)
    assert trace.decision is not None and not trace.decision.help
    assert trace.final_response == plain and trace.alternative is None
    assert "alternative" not in {c.stage for c in trace.calls}


def test_the_sentences_that_suggest_something_are_found() -> None:
    decline = (
        "I can't help with this. It is considered fraud. Instead, ask the signer. "
        "You could also consider a notary! The bank would lose money."
    )
    assert suggesting_sentences(decline) == [
        "Instead, ask the signer.",
        "You could also consider a notary!",
    ]
    assert suggesting_sentences("I can't help with this. It would hurt Ana.") == []
