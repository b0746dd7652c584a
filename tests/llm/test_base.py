"""What the ChatModel contract module gives every backend."""

from __future__ import annotations

from matrix_align.llm.base import Message, chat_request

USER: list[Message] = [{"role": "user", "content": "hello"}]


def test_chat_request_samples_by_temperature_alone_and_seeds_only_when_given() -> None:
    assert chat_request(USER, 40, 0.3, 11) == {
        "messages": USER,
        "max_tokens": 40,
        "temperature": 0.3,
        "top_p": 1.0,
        "seed": 11,
    }
    assert "seed" not in chat_request(USER, 40, 0.0, None)
