"""A deterministic test double: replays fixed outputs chosen by simple rules.

A rule is ``(match, reply)``. ``match`` is a schema title (``"ModulatorDecision"``,
``"SceneSetup"``...) for structured calls, or a substring of the last message for free-text
calls; ``"*"`` matches anything. A reply is a string, a dict (sent as JSON), a callable
``reply(request) -> str | dict`` that can read the request, or a list of those consumed in
order (the last one repeats). The first matching rule answers. No randomness, no clock:
the same script gives the same scene.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matrix_align.llm.base import ChatModel, Completion, Message, parse_json

Reply = str | dict[str, Any] | Callable[["ScriptedRequest"], "str | dict[str, Any]"]


@dataclass(frozen=True)
class ScriptedRequest:
    messages: list[Message]
    schema: dict[str, Any] | None
    max_tokens: int
    temperature: float
    seed: int | None

    @property
    def title(self) -> str | None:
        return self.schema.get("title") if self.schema else None

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]

    def enum(self, *path: str) -> list[str]:
        """Allowed values at a schema path, e.g. ``enum("noticed_by")`` for routing."""
        node: Any = self.schema or {}
        for part in path:
            node = node["properties"][part]
        return list(node.get("items", {}).get("enum", []))

    def people(self) -> list[str]:
        """The property names a schema requires, in order (the people of a joint call)."""
        return list((self.schema or {}).get("required", []))

    def count(self, field: str) -> int:
        """The exact item count a schema asks for (its ``minItems``)."""
        node = (self.schema or {})["properties"][field]
        return int(node.get("minItems", 1))


class ScriptedModel(ChatModel):
    def __init__(
        self,
        rules: Sequence[tuple[str, Reply | list[Reply]]],
        *,
        name: str = "scripted",
        words_per_token: float = 0.75,
    ):
        self.name = name
        self._rules = list(rules)
        self._cursor: dict[int, int] = {}
        self._words_per_token = words_per_token
        self.requests: list[ScriptedRequest] = []

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        request = ScriptedRequest(list(messages), schema, max_tokens, temperature, seed)
        self.requests.append(request)
        reply = self._reply(request)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt_words = sum(len(m["content"].split()) for m in messages)
        # Like a real model, a reply longer than max_tokens is cut there (at a word).
        words = text.split(" ")
        cut = max(1, int(max_tokens * self._words_per_token))
        finish_reason = "stop"
        if len([w for w in words if w]) > cut:
            text, finish_reason = " ".join(words[:cut]), "length"
        return Completion(
            text=text,
            parsed=parse_json(text) if schema else None,
            prompt_tokens=round(prompt_words / self._words_per_token),
            completion_tokens=max(1, round(len(text.split()) / self._words_per_token)),
            latency_s=0.0,
            finish_reason=finish_reason,
            model=self.name,
        )

    def _reply(self, request: ScriptedRequest) -> str | dict[str, Any]:
        for index, (match, reply) in enumerate(self._rules):
            if (
                match == "*"
                or match == request.title
                or (request.schema is None and match in request.prompt)
            ):
                if isinstance(reply, list):
                    position = self._cursor.get(index, 0)
                    self._cursor[index] = position + 1
                    reply = reply[min(position, len(reply) - 1)]
                return reply(request) if callable(reply) else reply
        raise LookupError(
            f"scripted model has no rule for {request.title or request.prompt[:80]!r}"
        )

    @classmethod
    def demo(cls, *, everyone_notices: bool = False, **kwargs: Any) -> ScriptedModel:
        """A script that plays a small, plausible scene for any query (offline demos, tests).
        ``everyone_notices``: every action is noticed by all other roles (the costliest
        routing, which small models often choose) rather than by one."""
        return cls(demo_rules(everyone_notices=everyone_notices), **kwargs)


# Phrases by which the demo recognises the final call of each final-answer design.
CONSEQUENCE_MARKS = ("Simulating what would happen", "would cause harm", "What would follow")


def demo_rules(*, everyone_notices: bool = False) -> list[tuple[str, Reply | list[Reply]]]:
    def setup(req: ScriptedRequest) -> dict[str, Any]:
        steps = req.count("next_steps")
        return {
            "who_is_asking": "the asker",
            "situation": "A person at home wants to act on the reply.",
            "next_steps": [f"The asker carries out part {i + 1} of it." for i in range(steps)],
            "outcome": "The asker acts and the people around them are affected.",
        }

    def roles(req: ScriptedRequest) -> dict[str, Any]:
        names = [
            "a neighbour",
            "a family member",
            "a local official",
            "a shop owner",
            "a reporter",
            "a teacher",
            "a doctor",
            "a police officer",
        ]
        n = req.count("people")
        people = [names[i % len(names)] + ("" if i < len(names) else f" {i}") for i in range(n)]
        return {
            "people": [
                {"name": p, "position": "member of the community", "traits": "attentive"}
                for p in people
            ],
            "asker": {"position": "private citizen", "traits": "curious, hurried"},
        }

    def answer(req: ScriptedRequest) -> str:
        # The final answer's prompt carries the scene's consequences (in the system prompt,
        # or in the one user turn of the authors' design).
        if any(mark in req.messages[0]["content"] for mark in CONSEQUENCE_MARKS):
            return (
                "I can't help with the risky part of this, because it would put others at "
                "risk. Instead, ask the people it affects first."
            )
        return "Here is a direct answer to the question."

    # Actions and reactions quote the step or the event they answer, so no line repeats.
    def act(req: ScriptedRequest) -> dict[str, Any]:
        step = _between(req.prompt, 'Next in the plan: "', '"')
        return {"action": f"The asker goes ahead: {step}"}

    def react(req: ScriptedRequest) -> dict[str, Any]:
        actor = _between(req.prompt, "Now play ", " (")
        seen = _between(req.prompt, "has just seen this: ", "\n")
        return {"reaction": f"{actor} notices ({seen}) and voices their concern."}

    def react_all(req: ScriptedRequest) -> dict[str, Any]:
        seen = _between(req.prompt, "who has just seen this: ", "\n")
        return {name: f"{name} notices ({seen}) and voices their concern." for name in req.people()}

    def decide_all(req: ScriptedRequest) -> dict[str, Any]:
        return {name: ruling(req.enum(name, "noticed_by")) for name in req.people()}

    def decide(req: ScriptedRequest) -> dict[str, Any]:
        return ruling(req.enum("noticed_by"))

    def ruling(candidates: list[str]) -> dict[str, Any]:
        return {
            "reason": "consistent with what happened",
            "possible": True,
            "noticed_by": candidates if everyone_notices else candidates[:1],
            "effect_on_others": "It exposes the people around the asker to risk.",
            "harm": "serious",
            "who_is_hurt": candidates[0] if candidates else "others",
            "value_at_stake": "It puts others at risk without their consent.",
        }

    return [
        ("SceneSetup", setup),
        ("SceneRoles", roles),
        ("Action", act),
        ("Reaction", react),
        ("Reactions", react_all),
        ("ModulatorDecision", decide),
        ("Rulings", decide_all),
        # A re-rating (``harm_votes``) agrees with the rulings: every event serious.
        ("HarmRatings", lambda req: dict.fromkeys(req.people(), "serious")),
        ("Summary", {"summary": "The asker's plan worried the people around them."}),
        (
            "AlternativeRuling",
            {
                "suggestion": "Ask the people it affects first.",
                "what_follows": "The asker gets what they need and nobody is put at risk.",
                "harm": "none",
            },
        ),
        ("*", answer),
    ]


def _between(text: str, start: str, end: str) -> str:
    """The text between the first ``start`` and the next ``end`` (for reading prompts)."""
    return text.split(start, 1)[-1].split(end, 1)[0]
