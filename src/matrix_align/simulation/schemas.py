"""The typed decisions of a scene, as pydantic models, and the JSON schemas sent to backends.

Static shapes are plain models. Where a decision depends on the scene (a plan of exactly
n steps, receivers drawn from the roles present), the JSON schema sent to the server is
narrowed with ``enum``/``minItems``/``maxItems`` so constrained decoding cannot produce
anything else, and ``check_*`` functions enforce the same rules on servers that do not
constrain. String lengths are capped by ``maxLength`` for speed; over-long strings from an
unconstrained server are clipped, not rejected.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, RootModel

# Field names are part of the prompt: a constrained decoder writes each key before its value,
# so keys use the plain words of the story (never "ego", "modulator" or "receivers"), and a
# judgement field comes before any free text about it.


class SceneSetup(BaseModel):
    who_is_asking: str  # the asker's role, a short noun phrase (the paper's "ego")
    situation: str
    next_steps: list[str]  # the plan
    outcome: str  # the likely future, for the asker and for others


class Profile(BaseModel):
    position: str  # social status and duties
    traits: str


class Person(BaseModel):
    # The position before the name: asked for a name first, the 1.5B model writes the role
    # there ("Teacher", "John Hacker"); with the role already written it gives a name.
    position: str
    name: str
    traits: str


class SceneRoles(BaseModel):
    people: list[Person]  # the stakeholders, the asker excluded
    asker: Profile


class Action(BaseModel):
    action: str


class Reaction(BaseModel):
    reaction: str


class Reactions(RootModel[dict[str, str]]):
    """The reactions of several people to one event, keyed by name (``--reactions joint``);
    the JSON schema sent has one required property per person, so no one is left out."""


class ModulatorDecision(BaseModel):
    reason: str
    possible: bool  # the feasibility verdict
    noticed_by: list[str]  # the receivers
    effect_on_others: str  # described before the harm is rated
    harm: Literal["none", "minor", "serious"]
    who_is_hurt: str
    value_at_stake: str  # the critique: the shared human value the action goes against


class Rulings(RootModel[dict[str, ModulatorDecision]]):
    """One ruling per person, keyed by name, for the reactions ruled on together."""


class HarmRatings(RootModel[dict[str, Literal["none", "minor", "serious"]]]):
    """A re-rating of every delivered event's harm, keyed by event id (``harm_votes``)."""


class Summary(BaseModel):
    summary: str


class AlternativeRuling(BaseModel):
    """The harm of what a decline suggests doing instead, described before it is rated."""

    suggestion: str  # what the reply suggests instead, in one sentence ("" for nothing)
    what_follows: str  # what would follow, for anyone, if the asker did it
    harm: Literal["none", "minor", "serious"]


def json_schema(model: type[BaseModel], limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's JSON schema with definitions inlined and ``limits`` merged into properties.

    ``limits`` maps a dotted path (``"plan"``, ``"plan.items"``, ``"stakeholders.items.name"``)
    to keywords to add there, e.g. ``{"plan": {"minItems": 3, "maxItems": 3}}``.
    """
    schema = _inline(model.model_json_schema())
    schema["additionalProperties"] = False
    for path, keywords in (limits or {}).items():
        node = schema
        for part in path.split("."):
            node = node["items"] if part == "items" else node["properties"][part]
        node.update(keywords)
    return schema


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
                target["additionalProperties"] = False
                return resolve(target)
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


CHARS_PER_TOKEN = 3  # fewer than English's ~4, so names and rare words still fit
# The grammar's string caps sit half again above the limits the text is clipped to. A model
# that reaches a cap fills its last few characters with whatever tokens still fit: after an
# English sentence those are often CJK characters ("without a clear,合法"), one or two
# letters each. With room above the limit, that tail always lies past the clip.
CAP_HEADROOM = 1.5


def with_headroom(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``maxLength`` raised by ``CAP_HEADROOM``; the texts are still
    clipped to the limits the stage asked for."""
    if isinstance(schema, dict):
        raised = {key: with_headroom(value) for key, value in schema.items()}
        if isinstance(schema.get("maxLength"), int):
            raised["maxLength"] = int(schema["maxLength"] * CAP_HEADROOM)
        return raised
    if isinstance(schema, list):
        return [with_headroom(item) for item in schema]
    return schema


TOKENS_PER_KEY = 4  # quotes, colon, comma and the whitespace a model may put around them


def output_token_cap(schema: dict[str, Any]) -> int | None:
    """The most new tokens a reply valid under ``schema`` can need, from its ``maxLength``,
        ``maxItems`` and enums, with half as much again for a model's JSON whitespace and for
    servers that do not constrain decoding (whose over-long strings are clipped); None when
        something in it is unbounded (a string without ``maxLength``, an array without
        ``maxItems``). Caps each structured call to what its stage needs (a one-sentence action
        does not need a thousand tokens), so a model that rambles or loops is stopped early."""
    need = _tokens_needed(schema)
    return None if need is None else need + need // 2 + 32


def _tokens_needed(node: dict[str, Any]) -> int | None:
    if "enum" in node:
        return max(len(str(v)) for v in node["enum"]) // CHARS_PER_TOKEN + 3
    kind = node.get("type")
    if kind == "object":
        total = 2
        for key, child in node.get("properties", {}).items():
            need = _tokens_needed(child)
            if need is None:
                return None
            total += len(key) // CHARS_PER_TOKEN + TOKENS_PER_KEY + need
        return total
    if kind == "array":
        items = _tokens_needed(node.get("items", {}))
        if "maxItems" not in node or items is None:
            return None
        return 2 + node["maxItems"] * (items + 2)
    if kind == "string":
        return None if "maxLength" not in node else node["maxLength"] // CHARS_PER_TOKEN + 3
    if kind in ("boolean", "integer", "number", "null"):
        return 4
    return None


def clip(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters: roles speak in single lines."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
