"""``context-distillation``: one call under a helpful-honest-harmless system prompt. At
inference time this is the context that training would distil away."""

from __future__ import annotations

from matrix_align.systems.context import Context, System, answer_tokens
from matrix_align.systems.prompts import render


async def run(ctx: Context) -> str:
    return await ctx.calls.text(
        ctx.model,
        [{"role": "system", "content": render("hhh_system")}, *ctx.user()],
        stage="answer",
        max_tokens=answer_tokens(ctx),
    )


SYSTEM = System(
    "context-distillation",
    "a helpful-honest-harmless system prompt",
    "1",
    run,
)
