"""One ``POST /v1/chat/completions`` body, checked and turned into what a scene needs: the
query, the simulation settings of this request, and how to answer (streamed or not).

What is honoured, and why the rest is refused rather than ignored:

- The query is the request's one user message. A scene answers a single question as the
  model's own first reply does (no system prompt, no history: that is the method), so a
  conversation (an assistant or tool turn, or a second user message) is refused with
  ``multi_turn_unsupported`` instead of silently dropping the turns that give it meaning.
  A system (or developer) message is refused too (``system_message_unsupported``), unless
  the server runs with ``--system-messages ignore`` for clients that always send one.
- ``temperature`` and ``seed`` set the scene's; ``max_tokens`` (or
  ``max_completion_tokens``) caps the answer the client gets (the scene's final answer, or
  the direct answer when the gate lets a request through without a scene).
- ``matrix`` (sent by the ``openai`` client as ``extra_body={"matrix": {...}}``): any
  simulation setting, by the command line's names (``roles``, ``steps``, ``depth``) or the
  YAML config's (``n_roles``...); it wins over the top-level parameters.
- Options that would change the shape of the answer the scene cannot honour (``n`` > 1,
  tools, a JSON ``response_format``, ``logprobs``) are refused; sampling knobs a scene has no
  use for (``top_p``, penalties, ``stop``, ``user``, ``metadata``...) are accepted and unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from matrix_align.errors import MatrixAlignError
from matrix_align.serve.api_errors import APIError, bad_request
from matrix_align.simulation.config import OPTION_ALIASES as ALIASES
from matrix_align.simulation.config import SimulationConfig

# Settings a request may not change: the templates are the server's.
SERVER_ONLY = frozenset({"prompts"})

# The longest query a scene is asked to run, as for a query read from a file by `generate`:
# every prompt of the scene repeats it, so a longer one is more likely a mistake than a
# question.
MAX_QUERY_CHARS = 100_000

SystemMessages = Literal["reject", "ignore"]


@dataclass(frozen=True)
class ChatRequest:
    query: str
    config: SimulationConfig
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    max_tokens: int | None = None  # the client's cap on the answer it gets


def parse_chat_request(
    body: Any, *, model_name: str, base: SimulationConfig, system_messages: SystemMessages
) -> ChatRequest:
    """The request, or an ``APIError`` naming the parameter that is wrong."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter.", param="model")
    if model != model_name:
        raise APIError(
            404,
            f"The model {model!r} does not exist; this server serves {model_name!r} "
            "(see GET /v1/models).",
            param="model",
            code="model_not_found",
        )
    query = _query(body.get("messages"), system_messages)
    _refuse_unsupported(body)
    stream = _optional(body, "stream", bool) or False
    stream_options = _optional(body, "stream_options", dict) or {}
    include_usage = stream_options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise bad_request("must be a boolean", param="stream_options.include_usage")
    max_tokens = _max_tokens(body)
    config = _config(body, base, max_tokens)
    return ChatRequest(query, config, stream, stream and include_usage, max_tokens)


def _query(messages: Any, system_messages: SystemMessages) -> str:
    if messages is None:
        raise bad_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    users: list[str] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object.", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            if system_messages == "ignore":
                continue
            raise bad_request(
                f"{where} is a {role} message. A MATRIX scene answers the user's question as "
                "the model's own reply, with no system prompt, so it would be dropped; send "
                "the user message alone (or run the server with --system-messages ignore).",
                param=where,
                code="system_message_unsupported",
            )
        if role == "user":
            users.append(_text(message.get("content"), f"{where}.content"))
        elif role in ("assistant", "tool", "function"):
            raise _multi_turn(where, role)
        else:
            raise bad_request(
                f"{where}.role must be one of system, developer, user, assistant, tool; "
                f"got {role!r}.",
                param=f"{where}.role",
            )
    if not users:
        raise bad_request("'messages' holds no user message to answer.", param="messages")
    if len(users) > 1:
        raise _multi_turn("messages", "user (a second)")
    query = users[0]
    if not query.strip():
        raise bad_request("The user message is empty.", param="messages")
    if len(query) > MAX_QUERY_CHARS:
        raise bad_request(
            f"The user message has {len(query):,} characters, more than the "
            f"{MAX_QUERY_CHARS:,} a query may have (every prompt of the scene repeats it).",
            param="messages",
            code="query_too_long",
        )
    from matrix_align.simulation.scene import check_query

    try:
        check_query(query)  # the scene's own check (valid Unicode): refused here, not mid-scene
    except MatrixAlignError as error:
        raise bad_request(error.message, param="messages") from None
    return query


def _multi_turn(where: str, role: str) -> APIError:
    return bad_request(
        f"{where} is an {role} message: this server answers one question per request (a "
        "MATRIX scene simulates what follows a single query), so earlier turns would be "
        "dropped. Send only the user message to answer.",
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


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n not in (None, 1):
        raise bad_request("Only n=1 is supported: a request runs one scene.", param="n")
    for name in ("tools", "functions"):
        if body.get(name):
            raise bad_request(f"'{name}' is not supported by matrix-align serve.", param=name)
    if body.get("tool_choice") not in (None, "none"):
        raise bad_request("'tool_choice' is not supported.", param="tool_choice")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") != "text"
    ):
        raise bad_request(
            "Only text answers are supported (response_format type 'text').",
            param="response_format",
        )
    if body.get("logprobs"):
        raise bad_request("'logprobs' is not supported.", param="logprobs")


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    """``body[name]`` if present and of ``kind`` (JSON's true is not the integer 1)."""
    value = body.get(name)
    if value is None:
        return None
    wrong_bool = isinstance(value, bool) and kind is not bool
    if wrong_bool or not isinstance(value, kind):
        raise bad_request(f"'{name}' must be a {_KIND_NAMES[kind]}.", param=name)
    return value


_KIND_NAMES = {bool: "boolean", dict: "object", int: "integer"}


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _optional(body, name, int)
        if value is not None:
            return value
    return None


def _config(
    body: dict[str, Any], base: SimulationConfig, max_tokens: int | None
) -> SimulationConfig:
    """The request's SimulationConfig: the server's, then top-level parameters, then
    ``matrix``; checked strictly (JSON gives types: "2" is not a number of roles)."""
    given: dict[str, str] = {}  # field -> the name the client used, for error messages
    values: dict[str, Any] = {}
    for name, field in (("temperature", "temperature"), ("seed", "seed")):
        if body.get(name) is not None:
            values[field], given[field] = body[name], name
    if max_tokens is not None:
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        values["final_max_tokens"], given["final_max_tokens"] = max_tokens, param
    overrides = body.get("matrix")
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise bad_request(
                "'matrix' must be an object of simulation settings, e.g. "
                '{"roles": 2, "steps": 2}.',
                param="matrix",
                code="invalid_matrix_settings",
            )
        fields = SimulationConfig.model_fields
        for key, value in overrides.items():
            field = ALIASES.get(key, key)
            if field in SERVER_ONLY:
                raise bad_request(
                    f"matrix.{key} cannot be set by a request: it would make the server read "
                    "its own files or render a client's template; start the server with "
                    f"--{key.replace('_', '-')} instead.",
                    param=f"matrix.{key}",
                    code="invalid_matrix_settings",
                )
            if field not in fields:
                names = ", ".join([*ALIASES, *(f for f in fields if f not in ALIASES.values())])
                raise bad_request(
                    f"Unknown simulation setting matrix.{key}; known: {names}.",
                    param=f"matrix.{key}",
                    code="invalid_matrix_settings",
                )
            if field in given and given[field].startswith("matrix."):
                raise bad_request(
                    f"matrix.{key} repeats {given[field]}.",
                    param=f"matrix.{key}",
                    code="invalid_matrix_settings",
                )
            values[field], given[field] = value, f"matrix.{key}"
    try:
        return SimulationConfig.model_validate({**base.model_dump(), **values}, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        param = given.get(field, field)
        raise bad_request(
            f"Invalid simulation setting {param}: {error['msg']}.",
            param=param,
            code="invalid_matrix_settings" if param.startswith("matrix.") else None,
        ) from None
