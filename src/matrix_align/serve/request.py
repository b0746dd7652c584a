"""One ``POST /v1/chat/completions`` body, checked and turned into what a scene needs: the
query, the simulation settings of this request, and how to answer (streamed or not).

What is honoured, and why the rest is refused rather than ignored:

- The query: the request's messages as one text (``conversation.py``: a conversation is
  rendered as the project renders one everywhere, system messages kept as context, unless
  the server's policies refuse them).
- ``temperature`` and ``seed`` set the scene's; ``max_tokens`` (or
  ``max_completion_tokens``) caps the answer the client gets (the scene's final answer, or
  the direct answer when the gate lets a request through without a scene); ``stop`` cuts
  that answer before the first stop string, as OpenAI's API does (the backend is not told:
  a scene's other calls must not stop there).
- ``matrix`` (sent by the ``openai`` client as ``extra_body={"matrix": {...}}``): any
  simulation setting, by the command line's names (``roles``, ``steps``, ``depth``) or the
  YAML config's (``n_roles``...); it wins over the top-level parameters.
- Options that would change the shape of the answer the scene cannot honour (``n`` > 1,
  tools the model may call, a JSON ``response_format``, ``logprobs``) are refused; tools
  with ``tool_choice: "none"`` are accepted (none will be called), and sampling knobs a
  scene has no use for (``top_p``, penalties, ``user``, ``metadata``...) are accepted and
  unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from matrix_align.serve.api_errors import APIError, bad_request
from matrix_align.serve.conversation import Conversations, SystemMessages, query_of
from matrix_align.simulation.config import OPTION_ALIASES as ALIASES
from matrix_align.simulation.config import SimulationConfig

# Settings a request may not change: the templates are the server's.
SERVER_ONLY = frozenset({"prompts"})

# OpenAI's API takes at most 4 stop strings; more is a client's mistake, refused as there.
MAX_STOP = 4


@dataclass(frozen=True)
class ChatRequest:
    query: str
    config: SimulationConfig
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    max_tokens: int | None = None  # the client's cap on the answer it gets
    stop: tuple[str, ...] = ()  # the answer is cut before the first of these


def parse_chat_request(
    body: Any,
    *,
    model_name: str,
    base: SimulationConfig,
    conversations: Conversations,
    system_messages: SystemMessages,
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
    query = query_of(
        body.get("messages"), conversations=conversations, system_messages=system_messages
    )
    _refuse_unsupported(body)
    stream = _optional(body, "stream", bool) or False
    stream_options = _optional(body, "stream_options", dict) or {}
    include_usage = stream_options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise bad_request("must be a boolean", param="stream_options.include_usage")
    max_tokens = _max_tokens(body)
    config = _config(body, base, max_tokens)
    return ChatRequest(
        query, config, stream, stream and include_usage, max_tokens, _stop(body.get("stop"))
    )


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n not in (None, 1):
        raise bad_request("Only n=1 is supported: a request runs one scene.", param="n")
    # Tools the model may call are refused (a scene writes text); with "none" as the choice
    # no tool will be called, which is what every answer here does.
    for tools, choice in (("tools", "tool_choice"), ("functions", "function_call")):
        if body.get(choice) not in (None, "none"):
            raise bad_request(
                f"'{choice}' may only be \"none\": matrix-align serve calls no tools.",
                param=choice,
            )
        if body.get(tools) and body.get(choice) != "none":
            raise bad_request(
                f"'{tools}' is supported only with {choice} \"none\": matrix-align serve "
                "calls no tools.",
                param=tools,
            )
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


def _stop(value: Any) -> tuple[str, ...]:
    """``stop``: a string or up to 4 non-empty strings, as OpenAI's API takes it."""
    stops = [value] if isinstance(value, str) else value
    if stops is None:
        return ()
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise bad_request(
            f"'stop' must be a non-empty string or an array of at most {MAX_STOP} of them.",
            param="stop",
        )
    return tuple(stops)


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
