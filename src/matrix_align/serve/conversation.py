"""How a request's messages become the one query a scene answers.

A scene simulates a single query, so a conversation has to become one text. The project
already has one way to do that, used by ``generate`` for chat-list inputs, by ``evaluate``
for follow-up turns and by the inspect solver: ``render_conversation`` (earlier turns as
"User: ..." / "Assistant: ..." lines, the latest user message last). The server uses the
same, so an answer through ``serve`` sees the query exactly as those paths would.

Two policies, chosen by the server (``--conversations``, ``--system-messages``):

- conversations: ``render`` (the default: evaluation harnesses send the whole dialogue, and
  a refusal broke them on their first sample) or ``reject`` (400
  ``multi_turn_unsupported``, for a server that must answer only single questions);
- system messages: ``context`` (the default: kept as "System: ..." lines of the rendered
  query, as ``generate`` keeps them; the answer is the scene's, which does not obey them as
  instructions), ``ignore`` (dropped) or ``reject`` (400 ``system_message_unsupported``).

Tool turns are refused whatever the policy: the server calls no tools, so a dialogue that
holds tool calls and results is not one it can continue.
"""

from __future__ import annotations

from typing import Any, Literal

from matrix_align.errors import MatrixAlignError
from matrix_align.folders.records import ChatMessage, render_conversation
from matrix_align.serve.api_errors import APIError, bad_request

Conversations = Literal["render", "reject"]
SystemMessages = Literal["context", "ignore", "reject"]

# The longest query a scene is asked to run, as for a query read from a file by `generate`:
# every prompt of the scene repeats it, so a longer one is more likely a mistake than a
# question. A rendered conversation counts whole.
MAX_QUERY_CHARS = 100_000

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def query_of(
    messages: Any, *, conversations: Conversations, system_messages: SystemMessages
) -> str:
    """The query of a request's ``messages``, or an ``APIError`` naming the message that
    cannot be used."""
    if messages is None:
        raise bad_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    turns: list[ChatMessage] = []
    users = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object.", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(
                f"{where}.role must be one of {', '.join(ROLES[:5])}; got {role!r}.",
                param=f"{where}.role",
            )
        if (
            role in ("tool", "function")
            or message.get("tool_calls")
            or message.get("function_call")
        ):
            raise bad_request(
                f"{where} is a tool call or result: this server calls no tools, so it cannot "
                "continue a dialogue that holds them.",
                param=where,
                code="tool_message_unsupported",
            )
        if role in ("system", "developer"):
            if system_messages == "ignore":
                continue
            if system_messages == "reject":
                raise bad_request(
                    f"{where} is a {role} message, which this server refuses (it runs with "
                    "--system-messages reject); send the user message alone.",
                    param=where,
                    code="system_message_unsupported",
                )
            role = "system"
        elif role == "user":
            users += 1
            if users > 1 and conversations == "reject":
                raise _multi_turn(where, "a second user")
        elif conversations == "reject":
            raise _multi_turn(where, "an assistant")
        content = message.get("content")
        text = "" if content is None and role == "assistant" else _text(content, f"{where}.content")
        if text.strip() or role == "user":
            turns.append(ChatMessage(role=role, content=text))
    if users == 0:
        raise bad_request("'messages' holds no user message to answer.", param="messages")
    if turns[-1].role != "user":
        raise bad_request(
            "The last message must be the user's: it is the one answered (an assistant "
            "message to continue is not supported).",
            param=f"messages[{len(messages) - 1}]",
        )
    if not turns[-1].content.strip():
        raise bad_request("The user message is empty.", param="messages")
    query = render_conversation(turns)
    if len(query) > MAX_QUERY_CHARS:
        raise bad_request(
            f"The query has {len(query):,} characters (the conversation rendered as one "
            f"text), more than the {MAX_QUERY_CHARS:,} a query may have (every prompt of the "
            "scene repeats it).",
            param="messages",
            code="query_too_long",
        )
    from matrix_align.simulation.scene import check_query

    try:
        check_query(query)  # the scene's own check (valid Unicode): refused here, not mid-scene
    except MatrixAlignError as error:
        raise bad_request(error.message, param="messages") from None
    return query


def _multi_turn(where: str, what: str) -> APIError:
    return bad_request(
        f"{where} is {what} message: this server runs with --conversations reject and "
        "answers one question per request, so earlier turns would be dropped. Send only the "
        "user message to answer.",
        param=where,
        code="multi_turn_unsupported",
    )


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or text parts (other parts, images, are refused)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(
                    f"{where}[{index}]: only text content is supported.",
                    param=f"{where}[{index}]",
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request("must be a string", param=f"{where}[{index}].text")
            texts.append(text)
        return "\n".join(texts)
    raise bad_request(f"{where} must be a string or an array of text parts.", param=where)
