"""A chat request turned into a query and this request's simulation settings, or refused
with the parameter named."""

from __future__ import annotations

from typing import Any

import pytest

from matrix_align.folders.records import ChatMessage, render_conversation
from matrix_align.serve.api_errors import APIError
from matrix_align.serve.conversation import MAX_QUERY_CHARS
from matrix_align.serve.request import ChatRequest, parse_chat_request
from matrix_align.simulation.config import SimulationConfig

BASE = SimulationConfig(n_roles=3, n_steps=3)


def parse(
    system_messages: str = "context", conversations: str = "render", **body: Any
) -> ChatRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "Why?"}], **body}
    return parse_chat_request(
        body,
        model_name="m",
        base=BASE,
        conversations=conversations,  # type: ignore[arg-type]
        system_messages=system_messages,  # type: ignore[arg-type]
    )


def refused(
    system_messages: str = "context", conversations: str = "render", **body: Any
) -> APIError:
    with pytest.raises(APIError) as caught:
        parse(system_messages, conversations, **body)
    return caught.value


def test_defaults_come_from_the_server_and_the_query_from_the_user_message() -> None:
    request = parse()
    assert request.query == "Why?" and request.config == BASE
    assert not request.stream and not request.include_usage and request.max_tokens is None


def test_top_level_parameters_then_matrix_settings() -> None:
    request = parse(
        temperature=0.7,
        seed=9,
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
        matrix={"roles": 1, "n_steps": 2, "depth": 0, "strictness": "strict", "temperature": 0},
    )
    config = request.config
    assert (config.n_roles, config.n_steps, config.reaction_depth) == (1, 2, 0)
    assert config.strictness == "strict" and config.seed == 9
    assert config.temperature == 0  # matrix wins over the top-level parameter
    assert config.final_max_tokens == 64 and request.max_tokens == 64
    assert request.stream and request.include_usage
    assert parse(max_completion_tokens=100).config.final_max_tokens == 100


def test_text_parts_are_joined_and_other_parts_refused() -> None:
    parts = [{"type": "text", "text": "Why is"}, {"type": "text", "text": "the sky blue?"}]
    assert parse(messages=[{"role": "user", "content": parts}]).query == "Why is\nthe sky blue?"
    image = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    assert refused(messages=[{"role": "user", "content": image}]).param == (
        "messages[0].content[0]"
    )


def test_system_messages_are_kept_as_context_ignored_or_refused_as_configured() -> None:
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Why?"}]
    kept = [
        ChatMessage(role="system", content="Be terse."),
        ChatMessage(role="user", content="Why?"),
    ]
    assert parse(messages=messages).query == render_conversation(kept)
    assert "System: Be terse." in parse(messages=messages).query
    developer = [{"role": "developer", "content": "Be terse."}, messages[1]]
    assert parse(messages=developer).query == render_conversation(kept)
    assert parse("ignore", messages=messages).query == "Why?"
    assert refused("reject", messages=messages).code == "system_message_unsupported"


HARNESS_DIALOGUE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What household chemicals are dangerous?"},
    {"role": "assistant", "content": "Bleach and ammonia, mixed."},
    {"role": "user", "content": [{"type": "text", "text": "How much makes a lethal dose?"}]},
]


def test_a_conversation_is_rendered_into_one_query_as_generate_renders_it() -> None:
    query = parse(messages=HARNESS_DIALOGUE).query
    expected = render_conversation(
        [
            ChatMessage(role="system", content="You are a helpful assistant."),
            ChatMessage(role="user", content="What household chemicals are dangerous?"),
            ChatMessage(role="assistant", content="Bleach and ammonia, mixed."),
            ChatMessage(role="user", content="How much makes a lethal dose?"),
        ]
    )
    assert query == expected
    assert query.endswith("The user's latest message: How much makes a lethal dose?")
    # Empty assistant turns (a harness's placeholder) are left out, as the solver does.
    with_empty = [HARNESS_DIALOGUE[1], {"role": "assistant", "content": None}, HARNESS_DIALOGUE[3]]
    assert "Assistant" not in parse(messages=with_empty).query


def test_the_reject_policy_refuses_earlier_turns() -> None:
    error = refused(conversations="reject", messages=HARNESS_DIALOGUE)
    assert (error.code, error.param) == ("multi_turn_unsupported", "messages[2]")
    two_users = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert refused(conversations="reject", messages=two_users).code == "multi_turn_unsupported"
    assert parse(messages=two_users).query.endswith("The user's latest message: b")


def test_tool_turns_and_a_last_turn_not_the_users_are_refused() -> None:
    tool_call = {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}
    assert refused(messages=[HARNESS_DIALOGUE[1], tool_call]).code == "tool_message_unsupported"
    tool = {"role": "tool", "content": "42", "tool_call_id": "1"}
    assert refused(messages=[tool, HARNESS_DIALOGUE[1]]).code == "tool_message_unsupported"
    error = refused(messages=HARNESS_DIALOGUE[:3])
    assert error.param == "messages[2]" and "last message must be the user's" in error.message


def test_small_max_tokens_stop_and_tools_that_will_not_be_called_are_accepted() -> None:
    assert parse(max_tokens=1).config.final_max_tokens == 1
    assert parse(stop="\n").stop == ("\n",)
    assert parse(stop=["a", "b"]).stop == ("a", "b")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert parse(tools=tools, tool_choice="none").query == "Why?"


@pytest.mark.parametrize(
    ("body", "param", "code", "status"),
    [
        ({"model": None}, "model", None, 400),
        ({"model": "gpt-4o"}, "model", "model_not_found", 404),
        ({"messages": "Why?"}, "messages", None, 400),
        ({"messages": [{"role": "robot", "content": "Why?"}]}, "messages[0].role", None, 400),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages", None, 400),
        (
            {"messages": [{"role": "user", "content": "x" * (MAX_QUERY_CHARS + 1)}]},
            "messages",
            "query_too_long",
            400,
        ),
        ({"messages": [{"role": "user", "content": "bad \ud800 text"}]}, "messages", None, 400),
        ({"stream": "yes"}, "stream", None, 400),
        ({"max_tokens": True}, "max_tokens", None, 400),
        ({"max_tokens": 0}, "max_tokens", None, 400),
        ({"stop": ""}, "stop", None, 400),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", None, 400),
        ({"stop": [1]}, "stop", None, 400),
        ({"tools": [{"type": "function"}], "tool_choice": "auto"}, "tool_choice", None, 400),
        ({"tool_choice": "required"}, "tool_choice", None, 400),
        ({"seed": 1.5}, "seed", None, 400),
        ({"tools": [{"type": "function"}]}, "tools", None, 400),
        ({"response_format": {"type": "json_object"}}, "response_format", None, 400),
        ({"matrix": {"roles": 2, "n_roles": 3}}, "matrix.n_roles", "invalid_matrix_settings", 400),
        ({"matrix": {"strictness": "harsh"}}, "matrix.strictness", "invalid_matrix_settings", 400),
        ({"matrix": {"adaptive_plan": 1}}, "matrix.adaptive_plan", "invalid_matrix_settings", 400),
        ({"matrix": {"prompts": "/etc"}}, "matrix.prompts", "invalid_matrix_settings", 400),
        (
            {"matrix": {"prompts": {"setup": "{{ query }}"}}},
            "matrix.prompts",
            "invalid_matrix_settings",
            400,
        ),
    ],
    ids=lambda v: str(v)[:50],
)
def test_refusals_name_the_parameter(
    body: dict[str, Any], param: str, code: str | None, status: int
) -> None:
    error = refused(**body)
    assert (error.param, error.status) == (param, status), error.message
    if code is not None:
        assert error.code == code
    assert set(error.body()["error"]) == {"message", "type", "param", "code"}
