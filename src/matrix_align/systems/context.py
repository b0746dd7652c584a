"""What a system is (``System``: its name, its call formula, its run function) and what its
run function is given (``Context``: the query, the model, the settings and the recorder of
its calls), with the rules every system's calls share: the answer's token cap, the length of
a structured reply's reason, and the label a model puts before a revised answer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from matrix_align.llm.base import ChatModel, Message
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.systems.options import SystemOptions


@dataclass
class Context:
    """What one system run needs: the query, the model, and a recorder for its calls."""

    query: str
    model: ChatModel
    config: SimulationConfig
    options: SystemOptions
    calls: SceneCalls
    selector: ChatModel
    initial: str = ""  # the system's first answer, kept for preference pairs

    def user(self) -> list[Message]:
        return [{"role": "user", "content": self.query}]


@dataclass(frozen=True)
class System:
    """A system: its name, one line about it, its call count, its run function, the
    ``SystemOptions`` fields it reads (they enter its answers' ids) and whether a selector
    (the judge) takes part."""

    name: str
    summary: str
    calls: str  # how many model calls one answer takes, as a formula of the options
    # None for matrix, which runs the simulator and keeps its full scene trace.
    run: Callable[[Context], Awaitable[str]] | None
    option_fields: tuple[str, ...] = ()
    uses_selector: bool = False


def answer_tokens(ctx: Context) -> int:
    """Token cap of a user-facing answer: the same for every system, so none is favoured
    by a longer answer (MATRIX's final answer uses ``final_max_tokens`` in its own code)."""
    return ctx.config.max_tokens


def reason_limit(max_tokens: int) -> int:
    """Characters allowed for the free-text reason of a structured reply (a selector's or a
    judge's), so that the whole JSON reply fits in ``max_tokens`` (about 3 characters a
    token, 30 tokens for the other fields): a reason cut off by the token cap would make the
    reply unparseable."""
    return max(40, min(600, (max_tokens - 30) * 3))


_LABEL = re.compile(
    r"^\s*\**(final answer|updated answer|improved answer|revised answer|revision|"
    r"rewritten answer|answer|response)\**\s*:\s*\**",
    re.IGNORECASE,
)


def strip_label(text: str) -> str:
    """Drop a leading 'Revision:' style label that models add despite the instruction."""
    return _LABEL.sub("", text.strip(), count=1).strip()
