"""What a planned run will cost, before it runs: calls, tokens and, given prices, dollars.

Why rehearse instead of a formula: the number of calls an item takes depends on the method
(a MATRIX scene's rounds and reactions, a debate's agents, a critique's rounds, a judge's
metric), and a formula kept beside the code would drift from it. So each kind of item is
answered by the real code path with the scripted test double (``ScriptedModel.demo()``: no
model is loaded or called), which makes exactly the calls the settings imply and whose
prompts are the real prompts. Two items of each group are rehearsed and their mean taken.

What a rehearsal cannot know is how long a real model's replies are (the double's are
short). For any backend but ``scripted``, each rehearsed call is counted at
``TYPICAL_COMPLETION_TOKENS``, capped at that call's ``max_tokens``: the mean per call
measured on the bundled 0.5B model over a scene at the paper's defaults (docs/generate.md,
the table of prefix reuse and cost per scene). The prompt side follows the real templates,
though a real model's longer replies also lengthen later prompts of a scene.

Where the output folder already holds finished items of a group, their recorded usage (this
model, these settings) replaces the rehearsal: the folder's own figures are the best guide
to the rest of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import Completion
from matrix_align.llm.wrappers import ModelWrapper, Request

TYPICAL_COMPLETION_TOKENS = 85
REHEARSED_PER_GROUP = 2


@dataclass
class UnitCost:
    """The expected model use of one item of a group, and where the figure comes from."""

    calls: float
    prompt_tokens: float
    completion_tokens: float
    basis: str  # "measured (n)" or "rehearsed (n)"


@dataclass
class Line:
    """One group of items (a source in a mode, a system on a benchmark, a judge's metric)."""

    label: str
    planned: int
    pending: int
    unit: UnitCost

    @property
    def calls(self) -> float:
        return self.unit.calls * self.pending

    @property
    def prompt_tokens(self) -> float:
        return self.unit.prompt_tokens * self.pending

    @property
    def completion_tokens(self) -> float:
        return self.unit.completion_tokens * self.pending


@dataclass
class Section:
    title: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class CostEstimate:
    sections: list[Section]
    plan: list[str] = field(default_factory=list)  # one line each: what will run

    @property
    def lines(self) -> list[Line]:
        return [line for section in self.sections for line in section.lines]

    @property
    def calls(self) -> float:
        return sum(line.calls for line in self.lines)

    @property
    def prompt_tokens(self) -> float:
        return sum(line.prompt_tokens for line in self.lines)

    @property
    def completion_tokens(self) -> float:
        return sum(line.completion_tokens for line in self.lines)

    def cost_usd(self, price_in: float, price_out: float) -> float:
        """Dollars at ``price_in``/``price_out`` USD per million prompt/completion tokens."""
        return (self.prompt_tokens * price_in + self.completion_tokens * price_out) / 1e6


class _Rehearsal(ModelWrapper):
    """The scripted double, noting each call's ``max_tokens`` (to count a real model's
    replies at a typical length, capped as the call caps them)."""

    name = "rehearsal"

    def __init__(self) -> None:
        from matrix_align.llm.scripted import ScriptedModel

        super().__init__(ScriptedModel.demo())
        self.caps: list[int] = []

    async def _complete(self, request: Request) -> Completion:
        self.caps.append(request.max_tokens)
        return await request.send(self.inner)


def rehearse(
    items: Sequence[Any],
    run: Callable[[Any, Any], Awaitable[Any]],
    *,
    scripted: bool,
) -> tuple[UnitCost, list[Any]]:
    """Mean usage of ``run(item, model)`` (which returns an ``Outcome``) over the first few
    items, on the scripted double; also the outcomes (their records stand in for answers
    not yet written, e.g. for planning judgements). ``scripted``: the real run uses the
    scripted backend too, so its reply lengths are exact."""
    sample = list(items[:REHEARSED_PER_GROUP])
    if not sample:
        return UnitCost(0, 0, 0, "nothing to do"), []

    async def one(item: Any) -> tuple[Any, list[int]]:
        model = _Rehearsal()
        return await run(item, model), model.caps

    results = [asyncio.run(one(item)) for item in sample]
    calls = prompt = completion = 0.0
    for outcome, caps in results:
        usage = outcome.usage
        calls += usage.calls
        prompt += usage.prompt_tokens
        if scripted:
            completion += usage.completion_tokens
        else:
            completion += sum(min(cap, TYPICAL_COMPLETION_TOKENS) for cap in caps)
    n = len(results)
    unit = UnitCost(calls / n, prompt / n, completion / n, f"rehearsed ({n})")
    return unit, [outcome for outcome, _ in results]


def measured(usages: Sequence[dict[str, Any]]) -> UnitCost | None:
    """Mean recorded usage of finished items, or None when there are none."""
    if not usages:
        return None
    n = len(usages)

    def mean(key: str) -> float:
        return sum(float(u.get(key) or 0) for u in usages) / n

    return UnitCost(
        mean("calls"), mean("prompt_tokens"), mean("completion_tokens"), f"measured ({n})"
    )


def check_prices(dry_run: bool, price_in: float | None, price_out: float | None) -> None:
    """Prices only mean something for a dry run's estimate; both or neither."""
    if (price_in is None) != (price_out is None):
        raise MatrixAlignError(
            "Give both --price-in and --price-out (USD per million prompt / completion tokens).",
            hint="e.g. --price-in 2.5 --price-out 10",
        )
    if price_in is not None and not dry_run:
        raise MatrixAlignError(
            "--price-in and --price-out are for the estimate of --dry-run.",
            hint="add --dry-run to see the estimated calls, tokens and cost",
        )


def print_estimate(
    estimate: CostEstimate, price_in: float | None = None, price_out: float | None = None
) -> None:
    """The plan, a table per section, and the totals, on standard output."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough that the table is not cut
        console = Console(width=120)
    for line in estimate.plan:
        console.print(escape(line), highlight=False)
    for section in estimate.sections:
        table = Table(title=f"{section.title} (calls and tokens per item)", title_justify="left")
        for name in ("group", "items", "to run", "calls", "prompt", "completion", "basis"):
            table.add_column(
                name, justify="left" if name in ("group", "basis") else "right", no_wrap=True
            )
        for ln in section.lines:
            u = ln.unit
            table.add_row(
                escape(ln.label), str(ln.planned), str(ln.pending), f"{u.calls:.1f}",
                f"{u.prompt_tokens:,.0f}", f"{u.completion_tokens:,.0f}", u.basis,
            )  # fmt: skip
        console.print(table)
    console.print(
        f"estimated: {estimate.calls:,.0f} calls, {estimate.prompt_tokens:,.0f} prompt + "
        f"{estimate.completion_tokens:,.0f} completion tokens",
        highlight=False,
    )
    if price_in is not None and price_out is not None:
        console.print(
            f"estimated cost: ${estimate.cost_usd(price_in, price_out):,.2f} (at ${price_in:g} "
            f"/ ${price_out:g} per million prompt / completion tokens)",
            highlight=False,
        )
    console.print("dry run: no model was loaded or called", style="dim", highlight=False)
