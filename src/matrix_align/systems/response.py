"""Running one system on one query: ``respond_full`` gives its ``SystemResponse`` (the answer,
the first answer and the trace of every call), ``respond`` the answer and the calls."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from matrix_align.llm.base import ChatModel
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import ModelCall, SceneTrace
from matrix_align.systems.context import Context
from matrix_align.systems.options import SystemOptions
from matrix_align.systems.registry import SYSTEMS, check_systems, system_settings


class SystemResponse(BaseModel):
    """One system's answer to one query, with the calls that produced it."""

    system: str
    answer: str
    initial_response: str = ""
    trace: SceneTrace

    @property
    def calls(self) -> list[ModelCall]:
        return self.trace.calls


async def respond_full(
    system: str,
    query: str,
    model: ChatModel,
    config: SimulationConfig | None = None,
    *,
    options: SystemOptions | None = None,
    selector: ChatModel | None = None,
) -> SystemResponse:
    """Answer ``query`` with one system; every model call is recorded in the trace.

    ``selector`` is the model that picks among best-of-n samples (default: ``model``).
    """
    check_systems([system])
    config = config or SimulationConfig()
    if system == "matrix":
        from matrix_align.simulation.scene import run_scene

        trace = await run_scene(query, model, config)
        return SystemResponse(
            system=system,
            answer=trace.final_response,
            initial_response=trace.initial_response,
            trace=trace,
        )
    start = time.perf_counter()
    trace = SceneTrace(
        query=query,
        config=system_settings(system, config, options or SystemOptions()),
        actor_model=getattr(model, "name", ""),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    ctx = Context(
        query=query,
        model=model,
        config=config,
        options=options or SystemOptions(),
        calls=SceneCalls(trace, config),
        selector=selector or model,
    )
    run = SYSTEMS[system].run
    assert run is not None
    answer = (await run(ctx)).strip()
    trace.initial_response = ctx.initial or answer
    trace.final_response = answer
    trace.recompute_totals(time.perf_counter() - start)
    return SystemResponse(
        system=system, answer=answer, initial_response=trace.initial_response, trace=trace
    )


async def respond(
    system: str,
    query: str,
    model: ChatModel,
    config: SimulationConfig | None = None,
    *,
    options: SystemOptions | None = None,
    selector: ChatModel | None = None,
) -> tuple[str, list[ModelCall]]:
    """``(answer, calls)`` of one system on one query: the small API for other commands."""
    response = await respond_full(system, query, model, config, options=options, selector=selector)
    return response.answer, response.calls
