"""Behaviour that every backend gets by wrapping, not by subclassing.

Why wrappers: retries, a concurrency limit, pacing and accounting are the same for llama.cpp
in-process, a vLLM fleet or the scripted test double, so each lives once here and composes
around any ``ChatModel``::

    AccountingModel(RetryingModel(RateLimitedModel(OpenAICompatModel(...), limits)))

Each wrapper forwards ``name`` (traces name the real model, not the wrapper), ``check()``
(so ``registry.preflight`` reaches the backend through any stack of wrappers) and
``aclose()``, both part of the ``ChatModel`` contract.

Order matters and is the caller's choice: accounting outside retries counts one call per
request (and a failure only when retries gave up); pacing inside retries counts each retry
against the per-minute budget.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from matrix_align.errors import TransientBackendError
from matrix_align.llm.base import ChatModel, Completion, Message
from matrix_align.llm.rate_limit import RateLimits, approx_prompt_tokens


@dataclass(frozen=True)
class Request:
    """One call of ``complete``, as a wrapper sees it and passes it on."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    seed: int | None = None
    schema: dict[str, Any] | None = None

    async def send(self, model: ChatModel) -> Completion:
        """The same call, made on ``model``."""
        return await model.complete(
            self.messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
            schema=self.schema,
        )


class ModelWrapper(ChatModel):
    """Forwards the identity and lifecycle of the wrapped model, and each call: a wrapper
    says what it adds around a call in ``_complete`` (the default passes it on unchanged)."""

    def __init__(self, model: ChatModel) -> None:
        self.inner = model

    @property
    def name(self) -> str:
        return self.inner.name

    async def check(self) -> None:
        await self.inner.check()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        return await self._complete(Request(messages, max_tokens, temperature, seed, schema))

    async def _complete(self, request: Request) -> Completion:
        return await request.send(self.inner)


# The longest a call waits in all because servers said so (Retry-After and its kin) before
# it gives up: long enough for a per-minute limit to reset twice, short enough that a daily
# quota or a server gone for maintenance fails the sample instead of stalling the run.
MAX_SERVER_WAIT_S = 120.0


log = logging.getLogger(__name__)


class RetryingModel(ModelWrapper):
    """Retries ``TransientBackendError``: after the wait the server asked for, else with
    exponential backoff and jitter.

    Only transient failures are retried (timeouts, 429, 5xx, dropped connections): a
    permanent error (a rejected request) or a bug would fail the same way again.

    Server-directed waits: an error whose ``retry_after_s`` is positive (a 429 or 503 with
    ``Retry-After`` in seconds or as an HTTP-date, or ``retry-after-ms``) is retried after
    that long, however long it is, as long as the waits of this call add up to at most
    ``max_server_wait_s``; past that the call fails at once, since retrying sooner than the
    server said is refused again. Such retries do not use up ``max_retries``. The wait also
    pauses every other call through this wrapper before its next attempt, because a rate
    limit is the server's, not one request's; each caller resumes with a little jitter so
    they do not all return in the same instant.

    Other transient errors: the delay before retry ``n`` (0-based) is
    ``min(max_delay_s, base_delay_s * 2**n)``, scaled by a random factor in [0.5, 1] so that
    many scenes failing together do not retry in lockstep. After ``max_retries`` such
    retries the last error is raised.

    Why a small loop and not tenacity: the two budgets (a count for unexplained failures, a
    time bound for server-directed waits) and the pause shared by all calls would each be a
    custom callback there, and the loop is shorter than that glue. ``clock`` and ``sleep``
    are injectable so tests of 30 s waits take no time.
    """

    def __init__(
        self,
        model: ChatModel,
        max_retries: int = 3,
        base_delay_s: float = 0.5,
        max_delay_s: float = 8.0,
        *,
        max_server_wait_s: float = MAX_SERVER_WAIT_S,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(model)
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_server_wait_s = max_server_wait_s
        self.retries = 0  # retries made so far, over all calls (for run summaries)
        self.server_waits = 0  # of which after a server-directed wait
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0  # on ``clock``: no attempt starts before this

    def delay_s(self, attempt: int) -> float:
        """Seconds of backoff before retry number ``attempt`` (0-based) of an error that did
        not say when to come back."""
        delay = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return delay * (0.5 + 0.5 * self._rng.random())

    async def _wait_out_pause(self) -> None:
        remaining = self._paused_until - self._clock()
        if remaining > 0:
            await self._sleep(remaining * (1.0 + 0.1 * self._rng.random()))

    async def _complete(self, request: Request) -> Completion:
        attempt = 0  # backoff retries used, against max_retries
        server_wait = 0.0  # seconds this call waited because a server said so
        while True:
            await self._wait_out_pause()
            try:
                return await request.send(self.inner)
            except TransientBackendError as error:
                hinted = getattr(error, "retry_after_s", None)
                if isinstance(hinted, int | float) and hinted > 0:
                    if server_wait + hinted > self.max_server_wait_s:
                        raise _past_bound(error, hinted, self.max_server_wait_s) from None
                    server_wait += hinted
                    self._paused_until = max(self._paused_until, self._clock() + hinted)
                    self.server_waits += 1
                    log.info("%s: retrying after %g s, as the server asked: %s",
                             self.name, hinted, error)  # fmt: skip
                else:
                    if attempt >= self.max_retries:
                        log.info("%s: giving up after %d retries: %s", self.name, attempt, error)
                        raise
                    delay = self.delay_s(attempt)
                    log.info("%s: retry %d of %d in %.1f s: %s",
                             self.name, attempt + 1, self.max_retries, delay, error)  # fmt: skip
                    await self._sleep(delay)
                    attempt += 1
                self.retries += 1


def _past_bound(error: TransientBackendError, hinted: float, bound: float) -> Exception:
    """The error, saying why it was not retried (its attributes kept for the caller)."""
    err = TransientBackendError(
        f"{error} (the server asked to wait {hinted:g} s more; matrix-align waits at most "
        f"{bound:g} s in all for one request)"
    )
    err.__dict__.update(error.__dict__)
    return err


class RateLimitedModel(ModelWrapper):
    """Paces calls to a per-minute budget of requests and tokens (see llm/rate_limit.py).

    Each call (each attempt, when inside ``RetryingModel``: a retry is a request too) takes
    one request and reserves its estimated tokens, then settles the reservation to the usage
    the server reported. A failed call keeps its estimate: the server may have counted it.
    """

    def __init__(self, model: ChatModel, limits: RateLimits) -> None:
        super().__init__(model)
        self.limits = limits

    async def _complete(self, request: Request) -> Completion:
        if self.limits.requests is not None:
            await self.limits.requests.acquire(1)
        spend = None
        if self.limits.tokens is not None:
            estimate = approx_prompt_tokens(request.messages) + request.max_tokens
            spend = await self.limits.tokens.acquire(estimate)
        result = await request.send(self.inner)
        used = result.prompt_tokens + result.completion_tokens
        if spend is not None and self.limits.tokens is not None and used > 0:
            self.limits.tokens.settle(spend, used)
        return result


class ConcurrencyLimitedModel(ModelWrapper):
    """At most ``max_concurrency`` calls in flight through this wrapper.

    Why: a backend without its own limit (or a shared one used by several roles) must not
    receive more requests than the server has slots; the rest wait here instead of timing
    out in the server's queue. The semaphore is rebuilt for each event loop, since asyncio
    primitives belong to the loop that first waited on them.
    """

    def __init__(self, model: ChatModel, max_concurrency: int) -> None:
        super().__init__(model)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.max_concurrency = max_concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(max_concurrency)

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    async def _complete(self, request: Request) -> Completion:
        async with self._sem():
            return await request.send(self.inner)


@dataclass
class ModelStats:
    """The live count of an ``AccountingModel``: every call sent, failed ones too.

    Not a ``Usage`` (simulation/trace.py, the record of the calls a trace kept): it counts
    calls while they are in flight, failures and busy time, below the layer that records
    calls. ``busy_s`` is wall time with at least one call in flight (so concurrency does not
    inflate it); ``call_s`` is the sum of call durations (so ``call_s / busy_s`` is the mean
    concurrency). ``failures_by_error`` counts failed calls by exception type, which is the
    "why" of a failure summary.
    """

    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    busy_s: float = 0.0
    call_s: float = 0.0
    failures_by_error: dict[str, int] = field(default_factory=dict)


class AccountingModel(ModelWrapper):
    """Counts calls, failures, tokens and busy time of the model it wraps.

    ``stats`` is live; ``snapshot()`` returns an independent copy (for a per-scene delta,
    take one before and one after).
    """

    def __init__(self, model: ChatModel) -> None:
        super().__init__(model)
        self.stats = ModelStats()
        self._in_flight = 0
        self._busy_since = 0.0

    def snapshot(self) -> ModelStats:
        stats = copy.deepcopy(self.stats)
        if self._in_flight:  # count the busy period still open
            stats.busy_s += time.perf_counter() - self._busy_since
        return stats

    async def _complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        if self._in_flight == 0:
            self._busy_since = started
        self._in_flight += 1
        self.stats.calls += 1
        try:
            result = await request.send(self.inner)
        except BaseException as error:
            if isinstance(error, Exception):
                self.stats.failures += 1
                counts = Counter(self.stats.failures_by_error)
                counts[type(error).__name__] += 1
                self.stats.failures_by_error = dict(counts)
            raise
        else:
            self.stats.prompt_tokens += result.prompt_tokens
            self.stats.completion_tokens += result.completion_tokens
            self.stats.cached_tokens += result.cached_tokens
            return result
        finally:
            ended = time.perf_counter()
            self.stats.call_s += ended - started
            self._in_flight -= 1
            if self._in_flight == 0:
                self.stats.busy_s += ended - self._busy_since


class DelayedModel(ModelWrapper):
    """Adds a fixed delay before every call: simulated latency for tests and benchmarks
    (e.g. to make sure a kill lands in the middle of a run)."""

    def __init__(self, model: ChatModel, delay_s: float) -> None:
        super().__init__(model)
        self.delay_s = delay_s

    async def _complete(self, request: Request) -> Completion:
        await asyncio.sleep(self.delay_s)
        return await request.send(self.inner)
