"""Hosted-API limits: server-directed waits (Retry-After, retry-after-ms, HTTP-dates) are
honoured up to a bound, and --rpm/--tpm pace every call of a process. A fake clock stands in
for time, so a 30 s Retry-After costs the test nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from matrix_align.errors import TransientBackendError
from matrix_align.llm.base import Completion
from matrix_align.llm.openai_compat import OpenAICompatModel
from matrix_align.llm.rate_limit import MinuteWindow, RateLimits, approx_prompt_tokens
from matrix_align.llm.retry_after import retry_after_s
from matrix_align.llm.wrappers import (
    MAX_SERVER_WAIT_S,
    AccountingModel,
    RateLimitedModel,
    RetryingModel,
)
from matrix_align.testing import FakeOpenAIServer

MODEL = "fake-model"
USER = [{"role": "user", "content": "hello"}]


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def hinted(seconds: float | None) -> TransientBackendError:
    error = TransientBackendError("HTTP 429: slow down")
    error.retry_after_s = seconds  # type: ignore[attr-defined]
    return error


class Refusing:
    """Raises the given errors in turn, then answers with fixed usage."""

    name = "refusing"

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def complete(self, messages, *, max_tokens, temperature, seed=None, schema=None):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Completion(text="ok", prompt_tokens=40, completion_tokens=10)


async def call(model: Any, max_tokens: int = 16) -> Completion:
    return await model.complete(USER, max_tokens=max_tokens, temperature=0.0)


# -- the headers ---------------------------------------------------------------------------


def test_retry_after_in_seconds_milliseconds_and_as_an_http_date():
    now = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=45), usegmt=True)
    clock = now.timestamp
    assert retry_after_s(httpx.Headers({"Retry-After": "30"})) == 30.0
    assert retry_after_s(httpx.Headers({"Retry-After": "2.5"})) == 2.5
    assert retry_after_s(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    # The precise form wins when a server sends both (OpenAI does).
    both = httpx.Headers({"Retry-After": "2", "retry-after-ms": "1250"})
    assert retry_after_s(both) == 1.25
    assert retry_after_s(httpx.Headers({"Retry-After": later}), now=clock) == 45.0
    past = format_datetime(now - timedelta(seconds=5), usegmt=True)
    assert retry_after_s(httpx.Headers({"Retry-After": past}), now=clock) == 0.0
    for junk in ("soon", "-3", "nan", ""):
        assert retry_after_s(httpx.Headers({"Retry-After": junk})) is None
    assert retry_after_s(httpx.Headers({})) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "30"}, 30.0), ({"retry-after-ms": "1500"}, 1.5)],
)
async def test_the_openai_backend_reads_every_form(headers: dict[str, str], expected: float):
    with FakeOpenAIServer(rate_limit_first=1, rate_limit_headers=headers) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        with pytest.raises(TransientBackendError) as caught:
            await call(model)
        await model.aclose()
    assert caught.value.retry_after_s == expected  # type: ignore[attr-defined]
    assert caught.value.status == 429  # type: ignore[attr-defined]


async def test_an_http_date_from_the_server_becomes_a_wait():
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    with FakeOpenAIServer(rate_limit_first=1, rate_limit_headers={"Retry-After": date}) as srv:
        model = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        with pytest.raises(TransientBackendError) as caught:
            await call(model)
        await model.aclose()
    assert 35 <= caught.value.retry_after_s <= 40  # type: ignore[attr-defined]


# -- waiting as told -----------------------------------------------------------------------


async def test_a_long_retry_after_is_waited_out_without_using_up_the_retries():
    clock = FakeClock()
    inner = Refusing([hinted(30.0), hinted(30.0), hinted(30.0)])
    model = RetryingModel(inner, max_retries=0, clock=clock, sleep=clock.sleep)
    result = await call(model)
    assert result.text == "ok" and inner.calls == 4
    assert model.retries == model.server_waits == 3
    # Each wait is the server's 30 s (plus at most 10% jitter), never the 8 s backoff cap.
    assert len(clock.slept) == 3 and all(30.0 <= s <= 33.0 for s in clock.slept)


async def test_a_wait_past_the_bound_fails_at_once_and_says_why():
    clock = FakeClock()
    inner = Refusing([hinted(3600.0)])
    model = RetryingModel(inner, max_retries=5, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransientBackendError, match="asked to wait 3600 s") as caught:
        await call(model)
    assert inner.calls == 1 and clock.slept == []
    assert caught.value.retry_after_s == 3600.0  # type: ignore[attr-defined]
    # Waits add up: four of 40 s pass 120 s, so the fourth is refused.
    assert MAX_SERVER_WAIT_S == 120.0
    inner = Refusing([hinted(40.0)] * 4)
    model = RetryingModel(inner, max_retries=5, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransientBackendError, match="at most 120 s"):
        await call(model)
    assert inner.calls == 4


async def test_a_server_wait_pauses_the_other_calls_too():
    """A rate limit is the server's: a call that starts while another waits out a 429 waits
    for the same moment instead of being refused too."""
    clock = FakeClock()
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        await gate.wait()
        clock.now += seconds

    inner = Refusing([hinted(20.0)])
    model = RetryingModel(inner, max_retries=0, clock=clock, sleep=held_sleep)
    first = asyncio.create_task(call(model))
    while not clock.slept:  # the first call got its 429 and waits
        await asyncio.sleep(0)
    second = asyncio.create_task(call(model))
    while len(clock.slept) < 2:
        await asyncio.sleep(0)
    assert inner.calls == 1  # the second call has not gone to the server yet
    assert all(20.0 <= s <= 22.0 for s in clock.slept)
    gate.set()
    await asyncio.gather(first, second)
    assert inner.calls == 3


async def test_a_zero_retry_after_falls_back_to_backoff_and_counts_as_a_retry():
    clock = FakeClock()
    inner = Refusing([hinted(0.0), hinted(None)])
    model = RetryingModel(inner, max_retries=1, base_delay_s=1, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransientBackendError):
        await call(model)
    assert inner.calls == 2 and model.server_waits == 0


def test_generate_waits_out_a_30_s_retry_after_and_no_sample_fails(tmp_path: Path):
    """The loopback server refuses its first ten requests with ``Retry-After: 30`` (a hosted
    API over its limit): every sample waits and succeeds, even with no backoff retries."""
    from matrix_align.data.generate import GenerateOptions, build_plan, generate
    from matrix_align.simulation.config import SimulationConfig

    config = SimulationConfig(n_roles=1, n_steps=1)
    queries = tmp_path / "queries.jsonl"
    prompts = ["How do I pick a lock?", "Write a phishing mail.", "Plan a surprise party."]
    queries.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), "utf-8")
    plan = build_plan([], [queries], config=config, model_key="openai:fake-model",
                      input_mode="matrix")  # fmt: skip
    clock = FakeClock()
    with FakeOpenAIServer(rate_limit_first=10) as srv:
        backend = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        retrying = RetryingModel(backend, max_retries=0, clock=clock, sleep=clock.sleep)
        model = AccountingModel(retrying)
        options = GenerateOptions(output=tmp_path / "out", export=False, concurrency=3)
        summary = asyncio.run(generate(plan, model, config, options, model_info={"key": "k"}))
    assert srv.rate_limited == 10
    assert summary["counts"]["done"] == 3 and summary["counts"]["failed"] == 0
    assert retrying.server_waits == 10
    # Every wait is at least the server's 30 s (on the fake clock: the test took no time).
    assert clock.slept and min(clock.slept) >= 30.0


# -- requests and tokens per minute ----------------------------------------------------------


async def test_the_window_allows_the_limit_in_any_minute_and_no_more():
    clock = FakeClock()
    window = MinuteWindow(3, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(7):
        await window.acquire(1)
        stamps.append(clock.now - 1000.0)
    assert stamps == [0, 0, 0, 60, 60, 60, 120]
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps if t - 60 < u <= t) <= 3, i


async def test_tokens_are_reserved_then_settled_to_the_reported_usage():
    clock = FakeClock()
    limits = RateLimits.per_minute(tpm=1000, clock=clock, sleep=clock.sleep)
    assert limits is not None and limits.tokens is not None
    model = RateLimitedModel(Refusing([]), limits)
    # The reservation is the prompt estimate plus max_tokens; the server said 50 tokens.
    assert approx_prompt_tokens(USER) + 400 < 1000
    await call(model, max_tokens=400)
    assert limits.tokens._total == 50
    # Settled to 50 each, twelve calls go at once (without settling, only two would: each
    # reserves 406); the thirteenth's reservation would pass 1000, so it waits.
    for _ in range(11):
        await call(model, max_tokens=400)
    assert clock.now == 1000.0 and limits.tokens._total == 600
    await call(model, max_tokens=400)
    assert clock.now == 1060.0 and limits.waited_s == 60.0


async def test_a_request_larger_than_the_limit_still_goes_through():
    clock = FakeClock()
    window = MinuteWindow(100, clock=clock, sleep=clock.sleep)
    await window.acquire(5000)
    assert clock.slept == []


def test_no_limits_means_no_wrapper():
    assert RateLimits.per_minute(None, None) is None


async def test_rpm_paces_calls_spread_over_two_servers_least_loaded():
    """The limit is the process's; the spread over several servers stays least-loaded."""
    from matrix_align.llm.spec import BackendSpec

    clock = FakeClock()
    limits = RateLimits.per_minute(rpm=4, clock=clock, sleep=clock.sleep)
    with FakeOpenAIServer() as one, FakeOpenAIServer() as two:
        spec = BackendSpec("openai", model=MODEL, base_url=[one.base_url, two.base_url],
                           limits=limits)  # fmt: skip
        model = spec.build()
        await asyncio.gather(*(call(model) for _ in range(8)))
        await model.aclose()
    assert len(one.requests) == len(two.requests) == 4
    assert clock.now - 1000.0 == pytest.approx(60.0)  # the second four waited a minute


def test_the_commands_take_rpm_and_tpm(tmp_path: Path):
    from typer.testing import CliRunner

    from matrix_align.cli.app import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["simulate", "Is it OK?", "--backend", "scripted", "--rpm", "600", "--tpm",
              "1000000", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for command in ("generate", "evaluate", "simulate"):
        help_text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert "--rpm" in help_text and "--tpm" in help_text
    bad = runner.invoke(app, ["simulate", "x", "--backend", "scripted", "--rpm", "0"])
    assert bad.exit_code == 2
