"""``best-of-n``: n samples at a higher temperature; a selector (the judge when evaluating,
else the model itself) picks one in a single listwise call."""

from __future__ import annotations

from pydantic import BaseModel

from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.schemas import json_schema
from matrix_align.systems.context import Context, System, answer_tokens, reason_limit
from matrix_align.systems.prompts import render


class Choice(BaseModel):
    reason: str
    best: int


async def run(ctx: Context) -> str:
    n = ctx.options.best_of_n
    sampling = SceneCalls(
        ctx.calls.trace,
        ctx.config.model_copy(update={"temperature": ctx.options.sample_temperature}),
    )
    candidates = await sampling.gather_in_order(
        [
            sampling.text(
                ctx.model, ctx.user(), stage="sample", round=i, max_tokens=answer_tokens(ctx)
            )
            for i in range(n)
        ]
    )
    ctx.initial = candidates[0]
    schema = json_schema(
        Choice,
        {
            "reason": {"maxLength": reason_limit(ctx.config.max_tokens)},
            "best": {"enum": list(range(1, n + 1))},
        },
    )

    def in_range(choice: Choice) -> Choice:
        if not 1 <= choice.best <= n:
            raise ValueError(f"best must be between 1 and {n}")
        return choice

    choice, _ = await ctx.calls.structured(
        ctx.selector,
        [
            {
                "role": "user",
                "content": render("best_of_n_select", query=ctx.query, candidates=candidates),
            }
        ],
        Choice,
        schema,
        stage="select",
        check=in_range,
        fallback=lambda: Choice(reason="fallback: the selection was invalid", best=1),
    )
    return candidates[choice.best - 1]


SYSTEM = System(
    "best-of-n",
    "n samples, the selector (the judge, or the model itself) picks one",
    "n + 1",
    run,
    ("best_of_n", "sample_temperature"),
    uses_selector=True,
)
