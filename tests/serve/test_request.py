"""A chat request turned into a query and this request's simulation settings, or refused
with the parameter named."""

from __future__ import annotations

from typing import Any

import pytest

from matrix_align.serve.api_errors import APIError
from matrix_align.serve.request import MAX_QUERY_CHARS, ChatRequest, parse_chat_request
from matrix_align.simulation.config import SimulationConfig

BASE = SimulationConfig(n_roles=3, n_steps=3)


def parse(system_messages: str = "reject", **body: Any) -> ChatRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "Why?"}], **body}
    return parse_chat_request(
        body,
        model_name="m",
        base=BASE,
        system_messages=system_messages,  # type: ignore[arg-type]
    )


def refused(**body: Any) -> APIError:
    with pytest.raises(APIError) as caught:
        parse(**body)
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


def test_system_messages_are_refused_or_ignored_as_configured() -> None:
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Why?"}]
    assert refused(messages=messages).code == "system_message_unsupported"
    assert parse("ignore", messages=messages).query == "Why?"


@pytest.mark.parametrize(
    ("body", "param", "code", "status"),
    [
        ({"model": None}, "model", None, 400),
        ({"model": "gpt-4o"}, "model", "model_not_found", 404),
        ({"messages": "Why?"}, "messages", None, 400),
        ({"messages": [{"role": "robot", "content": "Why?"}]}, "messages[0].role", None, 400),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0]", None, 400),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            "messages",
            "multi_turn_unsupported",
            400,
        ),
        (
            {"messages": [{"role": "user", "content": "x" * (MAX_QUERY_CHARS + 1)}]},
            "messages",
            "query_too_long",
            400,
        ),
        ({"messages": [{"role": "user", "content": "bad \ud800 text"}]}, "messages", None, 400),
        ({"stream": "yes"}, "stream", None, 400),
        ({"max_tokens": True}, "max_tokens", None, 400),
        ({"max_tokens": 4}, "max_tokens", None, 400),
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
