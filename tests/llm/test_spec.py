"""The backend's lifecycle, owned by the library: ``async with spec.open()`` builds, checks and
always closes the model (a result, an error, a failed check, a cancellation), and the commands
open their models that way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from matrix_align.errors import BackendUnavailable
from matrix_align.llm import registry
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.llm.spec import BackendSpec, open_all
from tests.conftest import run_main


class Recording(ScriptedModel):
    """The demo script, recording its lifecycle; ``fail_check`` makes the preflight fail,
    ``slow_close`` makes closing take a while (so a cancellation can land meanwhile)."""

    def __init__(self, *args: Any, fail_check: bool = False, slow_close: bool = False,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.fail_check = fail_check
        self.slow_close = slow_close
        self.checked = 0
        self.closed = 0

    async def check(self) -> None:
        self.checked += 1
        if self.fail_check:
            raise BackendUnavailable("Cannot reach the recording model.", hint="start it")

    async def aclose(self) -> None:
        if self.slow_close:
            await asyncio.sleep(0.05)
        self.closed += 1


def scripted(**kwargs: Any) -> tuple[BackendSpec, Recording]:
    model = Recording.demo(**kwargs)
    return BackendSpec("scripted", script=model), model


async def test_open_checks_then_closes_on_a_normal_exit() -> None:
    spec, model = scripted()
    async with spec.open() as opened:
        assert model.checked == 1 and model.closed == 0
        reply = await opened.complete([{"role": "user", "content": "hi"}], max_tokens=8,
                                      temperature=0.0)  # fmt: skip
        assert reply.text
    assert model.closed == 1


async def test_open_closes_when_the_block_raises() -> None:
    spec, model = scripted()
    with pytest.raises(RuntimeError, match="boom"):
        async with spec.open():
            raise RuntimeError("boom")
    assert model.closed == 1


async def test_a_failed_preflight_closes_what_was_built() -> None:
    spec, model = scripted(fail_check=True)
    entered = False
    with pytest.raises(BackendUnavailable, match="Cannot reach"):
        async with spec.open():
            entered = True
    assert not entered and model.checked == 1 and model.closed == 1


async def test_a_cancelled_task_closes_its_model() -> None:
    spec, model = scripted()
    inside = asyncio.Event()

    async def work() -> None:
        async with spec.open():
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.closed == 1


async def test_a_cancellation_during_the_close_lets_the_close_finish() -> None:
    """As ``serve`` ends on Ctrl-C: the cancellation lands as the block ends."""
    spec, model = scripted(slow_close=True)
    leaving = asyncio.Event()

    async def work() -> None:
        async with spec.open():
            leaving.set()

    task = asyncio.create_task(work())
    await leaving.wait()
    await asyncio.sleep(0.01)  # the block has ended: the model is closing
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.closed == 1


async def test_open_all_closes_the_opened_ones_when_a_later_check_fails() -> None:
    (first, one), (second, two), (third, three) = (
        scripted(), scripted(fail_check=True), scripted()
    )  # fmt: skip
    with pytest.raises(BackendUnavailable):
        async with open_all([first, second, third]):
            pytest.fail("entered")
    assert (one.closed, two.closed) == (1, 1)
    assert three.checked == 0 and three.closed == 0  # never built past the failed check


async def test_open_all_closes_every_model() -> None:
    (first, one), (second, two) = scripted(), scripted()
    async with open_all([first, second]) as models:
        assert len(models) == 2 and one.checked == two.checked == 1
    assert one.closed == two.closed == 1


def test_the_backend_options_make_the_spec() -> None:
    """The command line's backend options come back as the BackendSpec they name; options
    not given (None) are left to the spec's defaults."""
    from matrix_align.cli.option_groups import group_of
    from matrix_align.cli.options import BackendOptions

    options = group_of(BackendOptions)
    assert options is not None
    one = options.make({"backend": "openai", "model": "m", "base_url": ["http://h:1/v1"]})
    assert one.base_url == ("http://h:1/v1",) and one.retries == 3 and one.timeout_s == 300.0
    urls = ["http://a/v1", "http://b/v1"]
    two = options.make({"backend": "openai", "model": "m", "base_url": urls, "timeout_s": 9.0,
                        "rpm": 60}).replace(retries=5)  # fmt: skip
    assert two.base_url == ("http://a/v1", "http://b/v1") and two.retries == 5
    assert two.timeout_s == 9.0 and two.limits is not None
    assert options.make({"base_url": None, "parallel": None}) == BackendSpec()


def test_a_copy_shares_the_budget() -> None:
    """``replace`` validates like a new spec and keeps the one per-minute budget, so the
    judges of a model under test draw on the process's one limit."""
    spec = BackendSpec("openai", model="m", base_url="http://h/v1", rpm=60)
    judge = spec.replace(backend="scripted", retries=1)
    assert judge.limits is spec.limits is not None and judge.retries == 1
    with pytest.raises(ValueError, match="parallel"):
        spec.replace(parallel=0)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recording]:
    """Every model the scripted backend builds in this test, recording its lifecycle."""
    built: list[Recording] = []

    def build(request: Any) -> Recording:
        built.append(Recording.demo())
        return built[-1]

    monkeypatch.setitem(registry._BUILDERS, "scripted", build)
    return built


def test_simulate_closes_its_model(monkeypatch, capsys, recorded) -> None:
    code, text = run_main(monkeypatch, capsys, "simulate", "Hi?", "--backend", "scripted",
                          "--roles", "1", "--steps", "1", "--json")  # fmt: skip
    assert code == 0, text
    assert [(m.checked, m.closed) for m in recorded] == [(1, 1)]


def test_evaluate_closes_the_model_and_its_judges(monkeypatch, capsys, recorded, tmp_path) -> None:
    code, text = run_main(
        monkeypatch, capsys, "evaluate", "--backend", "scripted", "--hub", "never", "--limit",
        "1", "-q", "-S", "vanilla", "-B", "advbench", "--metrics", "refusal,harmlessness",
        "--judge-backend", "scripted", "-o", str(tmp_path / "eval"),
    )  # fmt: skip
    assert code == 0, text
    assert [(m.checked, m.closed) for m in recorded] == [(1, 1), (1, 1)]  # model, judge


def test_generate_closes_its_model(monkeypatch, capsys, recorded, tmp_path) -> None:
    code, text = run_main(
        monkeypatch, capsys, "generate", "--backend", "scripted", "--source",
        "vicuna-bench:direct:1", "--output", str(tmp_path / "run"), "--quiet", "--hub", "never",
        "--no-export",
    )  # fmt: skip
    assert code == 0, text
    assert [(m.checked, m.closed) for m in recorded] == [(1, 1)]
