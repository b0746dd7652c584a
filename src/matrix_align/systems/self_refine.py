"""``self-refine``: answer, then model-written feedback and a refinement, repeated until the
feedback says no revision is needed."""

from __future__ import annotations

from pydantic import BaseModel

from matrix_align.llm.base import Message
from matrix_align.simulation.schemas import json_schema
from matrix_align.systems import vanilla
from matrix_align.systems.context import Context, System, answer_tokens, reason_limit, strip_label
from matrix_align.systems.prompts import render


class Feedback(BaseModel):
    feedback: str
    needs_revision: bool


async def run(ctx: Context) -> str:
    answer = await vanilla.run(ctx)
    ctx.initial = answer
    schema = json_schema(Feedback, {"feedback": {"maxLength": reason_limit(ctx.config.max_tokens)}})
    for round_ in range(ctx.options.refine_iterations):
        conversation: list[Message] = [
            *ctx.user(),
            {"role": "assistant", "content": answer},
            {"role": "user", "content": render("refine_feedback")},
        ]
        feedback, _ = await ctx.calls.structured(
            ctx.model,
            conversation,
            Feedback,
            schema,
            stage="feedback",
            round=round_,
            fallback=lambda: Feedback(feedback="", needs_revision=False),
        )
        if not feedback.needs_revision:  # the method's stop condition
            break
        refined = strip_label(
            await ctx.calls.text(
                ctx.model,
                [
                    *ctx.user(),
                    {"role": "assistant", "content": answer},
                    {
                        "role": "user",
                        "content": render("refine_request", feedback=feedback.feedback),
                    },
                ],
                stage="refine",
                round=round_,
                max_tokens=answer_tokens(ctx),
            )
        )
        answer = refined or answer
    return answer


SYSTEM = System(
    "self-refine",
    "model-written feedback and refinement until the feedback is satisfied",
    "1 + 2 x iterations at most",
    run,
    ("refine_iterations",),
)
