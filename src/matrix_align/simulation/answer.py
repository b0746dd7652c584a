"""The answers around a scene: the model's first answer, the consequence drawn from the
scene, and the final, consequence-aware answer.

The final prompt describes the refusal-and-redirect pattern in words instead of showing a
worked example: with small models a few-shot example leaks into the answer (the authors'
code returned its example refusal even for harmless queries).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from matrix_align.llm.base import ChatModel, Message
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.prompts import render
from matrix_align.simulation.schemas import Summary, clip, json_schema
from matrix_align.simulation.trace import ModelCall, SceneTrace

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

NO_HARM = "No harmful consequences were recorded in the simulated scene."
SUMMARY_LIMIT = 400


def query_messages(query: str) -> list[Message]:
    """The query as a user would send it: no system prompt, so the answer is the model's own."""
    return [{"role": "user", "content": query}]


async def initial_response(scene: Scene) -> str:
    return await scene.calls.text(
        scene.actor,
        query_messages(scene.trace.query),
        stage="initial",
        max_tokens=scene.config.max_tokens,
    )


async def direct_answer(
    query: str, model: ChatModel, config: SimulationConfig
) -> tuple[str, ModelCall]:
    """The model's own answer with no simulation (``direct`` samples, the vanilla system)."""
    calls = SceneCalls(SceneTrace(query=query), config)
    text = await calls.text(
        model, query_messages(query), stage="initial", max_tokens=config.max_tokens
    )
    return text, calls.trace.calls[0]


async def consequence(scene: Scene) -> None:
    """The critiques recorded during the scene, plus a summary of them."""
    critiques = scene.trace.critiques
    if not critiques:
        scene.trace.consequence = NO_HARM
        return
    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(render("consequence", critiques=critiques)),
        Summary,
        json_schema(Summary, {"summary": {"maxLength": SUMMARY_LIMIT}}),
        stage="consequence",
        check=lambda v: Summary(summary=clip(v.summary, SUMMARY_LIMIT)),
        fallback=lambda: Summary(summary=""),
    )
    lines = [f"- {c}" for c in critiques]
    if value.summary:
        lines.append(f"In sum: {value.summary}")
    scene.trace.consequence = "\n".join(lines)


async def summarise_initial(scene: Scene) -> None:
    """One sentence of the first answer with harmful details removed."""
    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(render("initial_summary"), with_memory=False),
        Summary,
        json_schema(Summary, {"summary": {"maxLength": SUMMARY_LIMIT}}),
        stage="initial_summary",
        check=lambda v: Summary(summary=clip(v.summary, SUMMARY_LIMIT)),
        # Without a valid summary, say only that a draft existed: never leak its details.
        fallback=lambda: Summary(summary="The draft answered the request as asked."),
    )
    scene.trace.initial_summary = value.summary


async def final_response(scene: Scene) -> None:
    trace = scene.trace
    # The lessons of the scene go in the system prompt and the query stays the user's own
    # message, so the model answers the user rather than commenting on instructions.
    system = render(
        "final_system", initial_summary=trace.initial_summary, consequence=trace.consequence
    )
    messages: list[Message] = [
        {"role": "system", "content": system.strip()},
        *query_messages(trace.query),
    ]
    text = await scene.calls.text(
        scene.actor, messages, stage="final", max_tokens=scene.config.final_max_tokens
    )
    trace.final_response = _strip_preamble(text)


_PREAMBLE = re.compile(r"^(final answer|answer|response)\s*:\s*", re.IGNORECASE)


def _strip_preamble(text: str) -> str:
    """Drop a leading 'Answer:' label that small models like to add."""
    return _PREAMBLE.sub("", text.strip(), count=1)
