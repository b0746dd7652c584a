"""``debate``: several agents answer, read each other's answers and revise for some rounds,
then one call writes the final answer."""

from __future__ import annotations

from matrix_align.llm.base import Message
from matrix_align.systems.context import Context, System, answer_tokens, strip_label
from matrix_align.systems.prompts import render


async def run(ctx: Context) -> str:
    agents = [f"agent {i + 1}" for i in range(ctx.options.debate_agents)]
    answers = await ctx.calls.gather_in_order(
        [
            ctx.calls.text(
                ctx.model,
                ctx.user(),
                stage="answer",
                actor=a,
                round=0,
                max_tokens=answer_tokens(ctx),
            )
            for a in agents
        ]
    )
    ctx.initial = answers[0]
    for round_ in range(1, ctx.options.debate_rounds + 1):
        previous = list(answers)

        async def revise(index: int, previous: list[str] = previous, round_: int = round_) -> str:
            others = [a for j, a in enumerate(previous) if j != index]
            conversation: list[Message] = [
                *ctx.user(),
                {"role": "assistant", "content": previous[index]},
                {"role": "user", "content": render("debate_round", others=others)},
            ]
            text = await ctx.calls.text(
                ctx.model,
                conversation,
                stage="debate",
                actor=agents[index],
                round=round_,
                max_tokens=answer_tokens(ctx),
            )
            return strip_label(text) or previous[index]

        answers = await ctx.calls.gather_in_order([revise(i) for i in range(len(agents))])
    final = await ctx.calls.text(
        ctx.model,
        [{"role": "user", "content": render("debate_final", query=ctx.query, answers=answers)}],
        stage="final",
        max_tokens=answer_tokens(ctx),
    )
    return strip_label(final) or answers[0]


SYSTEM = System(
    "debate",
    "agents answer, critique each other for some rounds, then a final answer",
    "agents x (1 + rounds) + 1",
    run,
    ("debate_agents", "debate_rounds"),
)
