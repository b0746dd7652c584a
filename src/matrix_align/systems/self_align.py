"""``self-align`` (principle-driven prompting): one call with the principles as the system
prompt; the model names the principles that apply, then answers."""

from __future__ import annotations

import re

from matrix_align.systems.context import Context, System, answer_tokens
from matrix_align.systems.prompts import load_yaml, render

_ANSWER_MARK = re.compile(r"^\s*\**answer\**\s*:\s*", re.IGNORECASE | re.MULTILINE)


async def run(ctx: Context) -> str:
    system = render("self_align_system", principles=load_yaml("self_align.yaml"))
    text = await ctx.calls.text(
        ctx.model,
        [{"role": "system", "content": system}, *ctx.user()],
        stage="answer",
        max_tokens=answer_tokens(ctx),
    )
    return split_thought(text)


def split_thought(text: str) -> str:
    """The answer part of a 'Thought: ... Answer: ...' reply (self-align).

    Without an 'Answer:' line, a leading 'Thought:' paragraph is dropped and the rest is the
    answer; if nothing is left, the whole reply is the answer (never an empty answer for a
    formatting slip).
    """
    match = _ANSWER_MARK.search(text)
    if match:
        answer = text[match.end() :].strip()
        if answer:
            return answer
    stripped = text.strip()
    if stripped.lower().startswith("thought:"):
        rest = stripped.split("\n\n", 1)
        if len(rest) == 2 and rest[1].strip():
            return rest[1].strip()
    return stripped


SYSTEM = System(
    "self-align",
    "principle-driven prompting (principles as the system prompt)",
    "1",
    run,
)
