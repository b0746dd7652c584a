"""Requests and tokens per minute: the budget a hosted API grants, kept on the client side.

Why on the client: a hosted API refuses what goes over its per-minute limits with 429s, and
every refused request costs a round trip and a wait. Pacing below the limit costs nothing.

Why a sliding window and not a token bucket: providers count "per minute" over a rolling
window; a bucket that starts full lets up to twice the limit through in the first minute.
Here at most ``limit`` units are spent in any 60 s, exactly.

Tokens are not known before a call, so a call reserves an estimate (its prompt, from the
characters, plus its ``max_tokens``, which is also how providers count a request against a
tokens-per-minute limit) and settles to the usage the server reported once it answers.

One ``RateLimits`` is meant to be shared by every model of a process (the command line builds
one from ``--rpm``/``--tpm``), so the budget holds however many backends and judges draw on it.
The clock and sleep are injectable so tests need not wait a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from matrix_align.llm.base import Message

WINDOW_S = 60.0


def approx_tokens(text: str) -> int:
    """Tokens in ``text`` by the usual rule of thumb for English with BPE tokenizers (about
    four characters a token); used where no tokenizer is at hand (budgets, estimates)."""
    return (len(text) + 3) // 4


def approx_prompt_tokens(messages: list[Message]) -> int:
    """``approx_tokens`` of a chat prompt, with a few tokens per message for the template."""
    return sum(approx_tokens(str(m.get("content", ""))) + 4 for m in messages)


class _Spend:
    """One reservation in the window; ``amount`` is settled once the real cost is known."""

    __slots__ = ("at", "amount")

    def __init__(self, at: float, amount: float) -> None:
        self.at = at
        self.amount = amount


class MinuteWindow:
    """At most ``limit`` units spent in any ``WINDOW_S`` seconds; callers wait their turn.

    Waiters are served in arrival order (one lock), so a large request is not starved by a
    stream of small ones. A request larger than the whole limit reserves the limit (it would
    otherwise wait forever); the server decides whether it is acceptable.
    """

    def __init__(
        self,
        limit: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if limit <= 0:
            raise ValueError("limit must be > 0")
        self.limit = float(limit)
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[_Spend] = deque()
        self._total = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # time callers spent waiting here (for run summaries and tests)

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0].at <= now - WINDOW_S:
            self._total -= self._spent.popleft().amount

    def _wait_needed(self, amount: float, now: float) -> float:
        """Seconds until enough of the window has expired to spend ``amount`` more."""
        excess = self._total + amount - self.limit
        if excess <= 1e-9:
            return 0.0
        freed = 0.0
        for spend in self._spent:
            freed += spend.amount
            if freed >= excess - 1e-9:
                return max(spend.at + WINDOW_S - now, 1e-3)
        return WINDOW_S  # unreachable while amount <= limit; a safe upper bound anyway

    def _lock_for_loop(self) -> asyncio.Lock:
        # asyncio locks belong to the loop that first waited on them; a preflight and the
        # run may be two asyncio.run calls.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._lock = asyncio.Lock()
        return self._lock

    async def acquire(self, amount: float) -> _Spend:
        """Wait until ``amount`` fits in the window, then record it; returns the record, for
        ``settle``."""
        amount = min(max(float(amount), 0.0), self.limit)
        async with self._lock_for_loop():
            while True:
                now = self._clock()
                self._expire(now)
                wait = self._wait_needed(amount, now)
                if wait <= 0:
                    spend = _Spend(now, amount)
                    self._spent.append(spend)
                    self._total += amount
                    return spend
                self.waited_s += wait
                await self._sleep(wait)

    def settle(self, spend: _Spend, amount: float) -> None:
        """Replace a reservation by what was really spent (still within the window)."""
        amount = min(max(float(amount), 0.0), self.limit)
        if spend in self._spent:
            self._total += amount - spend.amount
        spend.amount = amount


@dataclass
class RateLimits:
    """The per-process budget: ``rpm`` requests and ``tpm`` tokens per minute (None: none)."""

    requests: MinuteWindow | None = None
    tokens: MinuteWindow | None = None

    @classmethod
    def per_minute(
        cls,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> RateLimits | None:
        """The limits for ``--rpm``/``--tpm``; None when neither is set (nothing to wrap)."""
        if not rpm and not tpm:
            return None
        return cls(
            requests=MinuteWindow(rpm, clock=clock, sleep=sleep) if rpm else None,
            tokens=MinuteWindow(tpm, clock=clock, sleep=sleep) if tpm else None,
        )

    @property
    def waited_s(self) -> float:
        return sum(w.waited_s for w in (self.requests, self.tokens) if w is not None)
