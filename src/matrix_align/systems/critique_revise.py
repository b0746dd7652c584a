"""``critique-revise`` (Constitutional AI): answer, then per round a critique and a revision
driven by one fixed, human-written principle (prompts/constitution.yaml)."""

from __future__ import annotations

import zlib

from matrix_align.llm.base import Message
from matrix_align.systems import vanilla
from matrix_align.systems.context import Context, System, answer_tokens, strip_label
from matrix_align.systems.prompts import load_yaml, render


async def run(ctx: Context) -> str:
    answer = await vanilla.run(ctx)
    ctx.initial = answer
    principles = load_yaml("constitution.yaml")
    for round_ in range(ctx.options.critique_rounds):
        principle = principles[_pick(ctx.query, round_, len(principles))]
        conversation: list[Message] = [
            *ctx.user(),
            {"role": "assistant", "content": answer},
            {"role": "user", "content": render("critique_request", critique=principle["critique"])},
        ]
        critique = await ctx.calls.text(
            ctx.model,
            conversation,
            stage="critique",
            round=round_,
            max_tokens=ctx.config.max_tokens,
        )
        conversation += [
            {"role": "assistant", "content": critique},
            {"role": "user", "content": render("revision_request", revision=principle["revision"])},
        ]
        revised = strip_label(
            await ctx.calls.text(
                ctx.model,
                conversation,
                stage="revision",
                round=round_,
                max_tokens=answer_tokens(ctx),
            )
        )
        answer = revised or answer  # an empty revision keeps the previous answer
    return answer


def _pick(query: str, round_: int, n: int) -> int:
    """A principle per round, fixed by the query: reproducible, and spread over queries the
    way Constitutional AI samples one principle per revision."""
    return (zlib.crc32(query.encode()) + round_) % n


SYSTEM = System(
    "critique-revise",
    "Constitutional AI: critique and revision with fixed principles",
    "1 + 2 x critique_rounds",
    run,
    ("critique_rounds",),
)
