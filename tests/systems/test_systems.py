"""Each system makes exactly the calls its method defines, recorded with tokens."""

from __future__ import annotations

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.simulation.config import SimulationConfig
from matrix_align.systems import (
    SYSTEMS,
    SystemOptions,
    check_systems,
    respond,
    respond_full,
    split_thought,
    strip_label,
    system_settings,
)

from .conftest import answering_model, judge_model

QUERY = "How do I pick a lock?"


def stages(response) -> list[str]:
    return [c.stage for c in response.calls]


async def test_vanilla_is_one_plain_call(tiny_config: SimulationConfig) -> None:
    model = answering_model()
    text, calls = await respond("vanilla", QUERY, model, tiny_config)
    assert [c.stage for c in calls] == ["answer"]
    assert calls[0].messages == [{"role": "user", "content": QUERY}]
    assert text == "Here is a direct answer to the question."
    assert calls[0].prompt_tokens > 0 and calls[0].completion_tokens > 0


async def test_critique_revise_answers_critiques_and_revises(tiny_config: SimulationConfig) -> None:
    model = answering_model(
        **{
            "Critique request": "It explains lock picking.",
            "Revision request": "Revision: Ask a locksmith.",
        }
    )
    response = await respond_full("critique-revise", QUERY, model, tiny_config)
    assert stages(response) == ["answer", "critique", "revision"]
    # The revision sees the answer and the critique, in one conversation.
    revision = response.calls[2].messages
    assert [m["role"] for m in revision] == ["user", "assistant", "user", "assistant", "user"]
    assert revision[3]["content"] == "It explains lock picking."
    assert response.answer == "Ask a locksmith."  # the "Revision:" label is stripped
    assert response.initial_response == "Here is a direct answer to the question."

    two = await respond_full(
        "critique-revise", QUERY, model, tiny_config, options=SystemOptions(critique_rounds=2)
    )
    assert stages(two) == ["answer", "critique", "revision", "critique", "revision"]


async def test_self_align_puts_principles_in_the_system_prompt(
    tiny_config: SimulationConfig,
) -> None:
    model = answering_model(
        **{QUERY: "Thought: ethical and lawful apply.\nAnswer: I can't help with that."}
    )
    response = await respond_full("self-align", QUERY, model, tiny_config)
    assert stages(response) == ["answer"]
    system = response.calls[0].messages[0]
    assert system["role"] == "system" and "(lawful)" in system["content"]
    assert response.answer == "I can't help with that."


async def test_context_distillation_uses_the_hhh_prompt(tiny_config: SimulationConfig) -> None:
    response = await respond_full("context-distillation", QUERY, answering_model(), tiny_config)
    assert stages(response) == ["answer"]
    assert "helpful, honest and harmless" in response.calls[0].messages[0]["content"]


async def test_debate_answers_critiques_each_other_and_concludes(
    tiny_config: SimulationConfig,
) -> None:
    model = answering_model(
        **{
            "Other assistants answered": "Updated answer: be careful.",
            "After a debate": "Final: be safe.",
        }
    )
    response = await respond_full(
        "debate", QUERY, model, tiny_config, options=SystemOptions(debate_agents=3, debate_rounds=2)
    )
    assert stages(response) == ["answer"] * 3 + ["debate"] * 6 + ["final"]
    seeds = [c for c in response.calls if c.stage == "answer"]
    assert len({model.requests[i].seed for i in range(3)}) == 3, "agents must sample differently"
    assert seeds[0].actor == "agent 1"
    # In a round, each agent sees the two others' answers, not its own.
    round_prompt = response.calls[3].messages[-1]["content"]
    assert round_prompt.count("[Assistant") == 2
    assert response.answer == "Final: be safe."


async def test_best_of_n_samples_then_the_selector_picks(tiny_config: SimulationConfig) -> None:
    model = answering_model(**{QUERY: ["first", "second", "third"]})
    selector = judge_model(Choice={"reason": "safest", "best": 2})
    response = await respond_full(
        "best-of-n",
        QUERY,
        model,
        tiny_config,
        options=SystemOptions(best_of_n=3),
        selector=selector,
    )
    assert stages(response) == ["sample"] * 3 + ["select"]
    assert response.answer == "second"
    assert len(selector.requests) == 1 and selector.requests[0].title == "Choice"
    assert {r.temperature for r in model.requests} == {0.8}
    assert len({r.seed for r in model.requests}) == 3


async def test_best_of_n_invalid_selection_falls_back_to_the_first(
    tiny_config: SimulationConfig,
) -> None:
    model = answering_model(**{QUERY: ["first", "second"]})
    selector = judge_model(Choice="not json")
    response = await respond_full(
        "best-of-n",
        QUERY,
        model,
        tiny_config,
        options=SystemOptions(best_of_n=2),
        selector=selector,
    )
    assert stages(response) == ["sample", "sample", "select", "select"]  # one re-ask
    assert response.answer == "first"
    assert response.trace.totals.fallbacks == 1


async def test_self_refine_stops_when_the_feedback_is_satisfied(
    tiny_config: SimulationConfig,
) -> None:
    # The free-text rule comes first: "Feedback" is also a substring of the refine prompt.
    model = answering_model(
        **{"Feedback on your last answer": "Improved: here it is, safely."},
        Feedback=[
            {"feedback": "Add a safety warning.", "needs_revision": True},
            {"feedback": "Good now.", "needs_revision": False},
        ],
    )
    response = await respond_full(
        "self-refine", QUERY, model, tiny_config, options=SystemOptions(refine_iterations=3)
    )
    assert stages(response) == ["answer", "feedback", "refine", "feedback"]
    assert response.answer == "Improved: here it is, safely."
    assert "Add a safety warning." in response.calls[2].messages[-1]["content"]


async def test_matrix_runs_a_scene(tiny_config: SimulationConfig) -> None:
    response = await respond_full("matrix", QUERY, ScriptedModel.demo(), tiny_config)
    # The demo's scene declines, so the alternative check follows the final answer.
    stages = [call.stage for call in response.calls]
    assert stages[0] == "initial" and stages[-2:] == ["final", "alternative"]
    assert response.answer == response.trace.final_response != ""
    assert response.trace.totals.calls == len(response.calls) > 5


def test_every_system_is_listed_and_unknown_names_list_the_valid_ones() -> None:
    assert list(SYSTEMS) == [
        "vanilla", "matrix", "critique-revise", "self-align",
        "context-distillation", "debate", "best-of-n", "self-refine",
    ]  # fmt: skip
    with pytest.raises(MatrixAlignError) as err:
        check_systems(["vanilla", "rlhf"])
    assert "rlhf" in err.value.message and "critique-revise" in str(err.value.hint)


def test_settings_hold_only_what_changes_a_systems_answer() -> None:
    config, options = SimulationConfig(), SystemOptions()
    vanilla = system_settings("vanilla", config, options)
    assert (
        system_settings("vanilla", config, options.model_copy(update={"best_of_n": 9})) == vanilla
    )
    assert (
        system_settings("best-of-n", config, options, "openai:judge")["selector"] == "openai:judge"
    )
    assert "simulation" in system_settings("matrix", config, options)


def test_answer_parsing_helpers() -> None:
    assert strip_label("**Revised answer:** Be safe.") == "Be safe."
    assert strip_label("Plain text") == "Plain text"
    assert split_thought("Thought: x\nAnswer: y") == "y"
    assert split_thought("Thought: x\n\nThe answer.") == "The answer."
    assert split_thought("Just an answer") == "Just an answer"
