"""``vanilla``: the model as it is, one call with no system prompt."""

from __future__ import annotations

from matrix_align.systems.context import Context, System, answer_tokens


async def run(ctx: Context) -> str:
    return await ctx.calls.text(
        ctx.model, ctx.user(), stage="answer", max_tokens=answer_tokens(ctx)
    )


SYSTEM = System("vanilla", "the model as it is, no system prompt", "1", run)
