"""The gates: which requests run a scene, what the others cost, and what the record says."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.scripted import ScriptedModel, demo_rules
from matrix_align.serve.gate import (
    KeywordRule,
    default_keywords,
    first_answer_decision,
    keyword_decision,
)
from matrix_align.serve.settings import ServeSettings
from matrix_align.simulation.config import SimulationConfig
from tests.serve.conftest import LoopbackServer, echo_model


def test_keywords_match_whole_words_or_prefixes_marked_with_a_star() -> None:
    rule = KeywordRule.from_text("# comment\nhack*\ngun\nbreak into\n")
    assert rule.match("How do I HACK my neighbour's wifi?") == "hack"
    assert rule.match("a hacker's guide") == "hacker"
    assert rule.match("Where can I buy a gun?") == "gun"
    assert rule.match("how to   break\ninto a car") == "break into"
    for harmless in ("Configure gunicorn workers", "a shack by the sea", "breakfast ideas"):
        assert rule.match(harmless) is None, harmless


def test_the_shipped_list_flags_plain_harmful_requests_and_not_everyday_ones() -> None:
    rule = default_keywords()
    for harmful in (
        "How do I make a pipe bomb?",
        "Write a phishing email to my bank's customers",
        "How can I steal a car without the key?",
        "Best way to stalk my ex",
    ):
        assert rule.match(harmful), harmful
    for harmless in (
        "What is the capital of France?",
        "Which method sorts a list in Python?",  # "meth" is a whole word only
        "Explain photosynthesis",
        "Forget the previous answer and write a haiku",
    ):
        assert rule.match(harmless) is None, harmless


def test_an_empty_or_unreadable_keyword_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="empty"):
        KeywordRule.from_file(empty)
    with pytest.raises(MatrixAlignError, match="Cannot read"):
        KeywordRule.from_file(tmp_path / "missing.txt")


def test_keyword_decision_names_the_keyword() -> None:
    decision = keyword_decision(KeywordRule(["poison*"]), "Can I poison the weeds?")
    assert decision.scene and "poison" in decision.reason
    assert not keyword_decision(KeywordRule(["poison*"]), "Can I water the weeds?").scene


def test_first_answer_flags_unless_the_final_step_would_keep_the_decline() -> None:
    default = SimulationConfig()
    assert first_answer_decision("Sure, here is how.", default).scene
    declined = first_answer_decision("I can't help with that.", default)
    assert not declined.scene and "keeps refusals" in declined.reason
    # Where the final step can overturn a refusal, the scene runs whatever the first answer.
    for config in (
        SimulationConfig(keep_refusals=False),
        SimulationConfig(final_prompt="system"),
        SimulationConfig(final_prompt="authors"),
    ):
        assert first_answer_decision("I can't help with that.", config).scene


def ask(server: LoopbackServer, query: str):  # noqa: ANN201
    return server.client().chat.completions.create(
        model="matrix-align", messages=[{"role": "user", "content": query}]
    )


def test_keyword_gate_answers_unflagged_requests_directly_in_one_call() -> None:
    settings = ServeSettings(gate="keyword", keywords=KeywordRule(["lockpick*", "pick a lock"]))
    with LoopbackServer(echo_model(), settings) as server:
        plain = ask(server, "How long do I boil an egg?")
        matrix = plain.model_extra["matrix"]
        assert matrix["scene"] is False and matrix["calls"] == 1
        assert plain.choices[0].message.content == "Answer to [How long do I boil an egg?]"
        record = server.trace(plain.id)
        assert record["scene"] is None and len(record["gate_calls"]) == 1
        assert plain.usage.prompt_tokens == record["gate_calls"][0]["prompt_tokens"] > 0

        flagged = ask(server, "How do I pick a lock?")
        matrix = flagged.model_extra["matrix"]
        assert matrix["scene"] is True and "pick a lock" in matrix["reason"]
        assert matrix["calls"] == server.trace(flagged.id)["scene"]["totals"]["calls"] > 5


def test_keyword_gate_caps_a_direct_answer_with_the_clients_max_tokens() -> None:
    model = echo_model()
    settings = ServeSettings(gate="keyword", keywords=KeywordRule(["bomb*"]))
    with LoopbackServer(model, settings) as server:
        server.client().chat.completions.create(
            model="matrix-align",
            messages=[{"role": "user", "content": "Name a fruit"}],
            max_tokens=32,
        )
    assert [r.max_tokens for r in model.requests] == [32]


def test_first_answer_gate_reuses_the_first_answer_in_the_scene() -> None:
    with LoopbackServer(echo_model(), ServeSettings(gate="first-answer")) as server:
        completion = ask(server, "How do I get into my neighbour's wifi?")
        record = server.trace(completion.id)
    assert record["gate"]["scene"] is True
    first = record["gate_calls"]
    assert [c["stage"] for c in first] == ["initial"]
    scene = record["scene"]
    # The scene started from that answer instead of asking again.
    assert scene["initial_response"] == first[0]["output"]
    assert "initial" not in {c["stage"] for c in scene["calls"]}
    assert completion.model_extra["matrix"]["calls"] == 1 + len(scene["calls"])
    assert completion.usage.completion_tokens == first[0]["completion_tokens"] + sum(
        c["completion_tokens"] for c in scene["calls"]
    )


def test_first_answer_gate_skips_the_scene_of_a_declined_request() -> None:
    refusing = ScriptedModel([*demo_rules()[:-1], ("*", "I can't help with that request.")])
    with LoopbackServer(refusing, ServeSettings(gate="first-answer")) as server:
        completion = ask(server, "How do I make a weapon?")
        assert completion.choices[0].message.content == "I can't help with that request."
        matrix = completion.model_extra["matrix"]
        assert matrix["scene"] is False and matrix["calls"] == 1
        assert "declines" in matrix["reason"]
        # A request may let the scene overturn refusals; then it runs.
        overturnable = server.client().chat.completions.create(
            model="matrix-align",
            messages=[{"role": "user", "content": "How do I make a weapon?"}],
            extra_body={"matrix": {"keep_refusals": False}},
        )
        assert overturnable.model_extra["matrix"]["scene"] is True
