"""Wrappers around any ChatModel: retries, concurrency limit, accounting, forwarding."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import pytest

from matrix_align.errors import BackendUnavailable, PermanentBackendError, TransientBackendError
from matrix_align.llm.base import ChatModel, Completion, Message
from matrix_align.llm.openai_compat import OpenAICompatModel
from matrix_align.llm.registry import preflight
from matrix_align.llm.spec import BackendSpec
from matrix_align.llm.wrappers import (
    AccountingModel,
    ConcurrencyLimitedModel,
    RetryingModel,
)
from matrix_align.testing import FakeOpenAIServer

MODEL = "fake-model"
USER: list[Message] = [{"role": "user", "content": "hello"}]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
FAULT_KIND = {
    "fail_500": "http_500",
    "fail_429": "http_429",
    "fail_timeout": "timeout",
    "fail_malformed_body": "malformed_body",
}
FAST = {"base_delay_s": 0.001, "max_delay_s": 0.01}


class Flaky:
    """A tiny test double: raises the given errors in turn, then answers."""

    name = "flaky"

    def __init__(self, errors: list[Exception], delay_s: float = 0.0) -> None:
        self.errors = list(errors)
        self.delay_s = delay_s
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.checked = False

    async def check(self) -> None:
        self.checked = True

    async def complete(self, messages, *, max_tokens, temperature, seed=None, schema=None):
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            if self.errors:
                raise self.errors.pop(0)
            return Completion(
                text='{"ok": true}' if schema else f"reply {self.calls}",
                parsed={"ok": True} if schema else None,
                prompt_tokens=10,
                completion_tokens=3,
                cached_tokens=4,
            )
        finally:
            self.in_flight -= 1


async def call(model: ChatModel, **kw: Any) -> Completion:
    params = {"max_tokens": 16, "temperature": 0.0, "seed": None, "schema": None, **kw}
    return await model.complete(USER, **params)


@pytest.mark.parametrize("fault", list(FAULT_KIND))
async def test_retries_server_faults_until_success(fault):
    with FakeOpenAIServer(**{fault: 0.5}, seed=3, hang_s=1.0) as srv:
        base = OpenAICompatModel(base_url=srv.base_url, model=MODEL, timeout_s=0.25)
        model = RetryingModel(base, max_retries=8, **FAST)
        results = [await call(model) for _ in range(4)]
        await base.aclose()
    injected = srv.fault_counts[FAULT_KIND[fault]]
    assert all(r.text.startswith("echo:") for r in results)
    assert injected > 0 and model.retries == injected
    assert len(srv.requests) == 4 + injected


async def test_gives_up_after_max_retries_with_the_last_error():
    with FakeOpenAIServer(fail_500=1.0) as srv:
        base = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        with pytest.raises(TransientBackendError, match="500"):
            await call(RetryingModel(base, max_retries=2, **FAST))
        await base.aclose()
    assert len(srv.requests) == 3


async def test_permanent_errors_are_not_retried():
    with FakeOpenAIServer() as srv:
        base = OpenAICompatModel(base_url=srv.base_url, model="not-served")
        with pytest.raises(PermanentBackendError):
            await call(RetryingModel(base, max_retries=5, **FAST))
        await base.aclose()
    assert len(srv.requests) == 1

    inner = Flaky([ValueError("a bug, not a server hiccup")])
    with pytest.raises(ValueError):
        await call(RetryingModel(inner, max_retries=5, **FAST))
    assert inner.calls == 1


def test_backoff_grows_is_jittered_and_capped():
    model = RetryingModel(Flaky([]), base_delay_s=1.0, max_delay_s=8.0, rng=random.Random(0))
    delays = [model.delay_s(n) for n in range(6)]
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 8.0


async def test_accounting_sums_usage_over_the_fake_server():
    with FakeOpenAIServer() as srv:
        base = OpenAICompatModel(base_url=srv.base_url, model=MODEL)
        model = AccountingModel(base)
        results = await asyncio.gather(*(call(model, schema=SCHEMA) for _ in range(3)))
        await base.aclose()
    stats = model.snapshot()
    assert stats.calls == 3 and stats.failures == 0
    assert stats.prompt_tokens == sum(r.prompt_tokens for r in results) > 0
    assert stats.completion_tokens == sum(r.completion_tokens for r in results) > 0
    assert stats.cached_tokens == sum(r.cached_tokens for r in results)
    assert 0 < stats.busy_s <= stats.call_s


async def test_accounting_counts_failures_by_type():
    model = AccountingModel(Flaky([TransientBackendError("boom")]))
    with pytest.raises(TransientBackendError):
        await call(model)
    before = model.snapshot()
    await call(model)
    assert before.calls == 1 and before.failures == 1  # the snapshot did not move
    assert before.failures_by_error == {"TransientBackendError": 1}
    assert model.stats.calls == 2 and model.stats.prompt_tokens == 10


async def test_accounting_outside_retries_counts_one_call_per_request():
    inner = Flaky([TransientBackendError("x"), TransientBackendError("y")])
    model = AccountingModel(RetryingModel(inner, max_retries=3, **FAST))
    await call(model)
    assert (model.stats.calls, model.stats.failures, inner.calls) == (1, 0, 3)


async def test_concurrency_limit_holds():
    inner = Flaky([], delay_s=0.02)
    model = ConcurrencyLimitedModel(inner, max_concurrency=3)
    await asyncio.gather(*(call(model) for _ in range(10)))
    assert inner.calls == 10 and inner.max_in_flight == 3


async def test_wrappers_forward_name_and_check():
    inner = Flaky([])
    stack = AccountingModel(RetryingModel(ConcurrencyLimitedModel(inner, 2)))
    assert stack.name == "flaky"
    await preflight(stack)
    assert inner.checked
    assert isinstance(stack, ChatModel)


async def test_preflight_through_the_registry_stack_names_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    model = BackendSpec("openai", model=MODEL, base_url=url).build()
    assert model.name == f"openai:{MODEL}"
    with pytest.raises(BackendUnavailable, match=url.replace(".", r"\.")):
        await preflight(model)


async def test_registry_stack_serves_over_the_fake_server():
    with FakeOpenAIServer(owned_by="vllm") as srv:
        model = BackendSpec("openai", model=MODEL, base_url=srv.base_url, parallel=2).build()
        await preflight(model)
        result = await call(model, schema=SCHEMA)
        await model.aclose()  # type: ignore[attr-defined]
    assert result.parsed == {"ok": False}
    assert srv.requests[0]["dialect_field"] == "structured_outputs"
    assert model.stats.calls == 1  # type: ignore[attr-defined]


class Recorder(ChatModel):
    """Keeps the arguments of every call."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[list[Message], dict[str, Any]]] = []

    async def complete(self, messages, *, max_tokens, temperature, seed=None, schema=None):
        self.calls.append((messages, dict(max_tokens=max_tokens, temperature=temperature,
                                          seed=seed, schema=schema)))  # fmt: skip
        return Completion(text="ok")


@pytest.mark.parametrize("seed", [None, 7])
def test_every_wrapper_passes_each_argument_of_a_call_on_unchanged(seed: int | None) -> None:
    """A wrapper adds around a call (in ``_complete``) and passes the same ``Request`` on."""
    from matrix_align.llm.rate_limit import RateLimits
    from matrix_align.llm.wrappers import DelayedModel, RateLimitedModel, Request

    limits = RateLimits.per_minute(rpm=1000, tpm=100_000)
    assert limits is not None
    inner = Recorder()
    stack = AccountingModel(
        RetryingModel(
            ConcurrencyLimitedModel(
                RateLimitedModel(DelayedModel(inner, 0.0), limits), max_concurrency=2
            )
        )
    )
    asyncio.run(stack.complete(USER, max_tokens=9, temperature=0.5, seed=seed, schema=SCHEMA))
    args = dict(max_tokens=9, temperature=0.5, seed=seed, schema=SCHEMA)
    assert inner.calls == [(USER, args)]
    request = Request(USER, 9, 0.5, seed, SCHEMA)
    assert asyncio.run(request.send(inner)).text == "ok"
    assert inner.calls[-1] == (USER, args)
