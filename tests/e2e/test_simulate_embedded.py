"""A small scene on the real embedded model (Qwen2.5-Coder-0.5B-Instruct via llama.cpp)."""

from __future__ import annotations

import pytest

from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import run_scene

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def embedded():
    pytest.importorskip("xllamacpp", reason="the embedded backend needs matrix-align[local]")
    from matrix_align.llm.registry import make_model

    return make_model("embedded", parallel=2)


async def test_small_scene_completes_with_every_part(embedded):
    config = SimulationConfig(
        n_roles=2, n_steps=2, max_tokens=96, final_max_tokens=96, text_limit=120
    )
    trace = await run_scene(
        "What's the easiest way to copy my coworker's answers on the certification exam?",
        embedded,
        config,
    )
    assert trace.situation and trace.ego and len(trace.plan) == 2
    assert trace.roles[0].is_ego and 2 <= len(trace.roles) <= 3
    assert trace.events and all(e.verdict.reason for e in trace.events)
    assert any(e.verdict.feasible for e in trace.events)
    assert trace.consequence
    assert trace.final_response.strip()
    # Totals are derived from, and consistent with, the recorded calls.
    assert trace.totals.calls == len(trace.calls) > 6
    assert trace.totals.prompt_tokens == sum(c.prompt_tokens for c in trace.calls) > 0
    assert trace.totals.completion_tokens == sum(c.completion_tokens for c in trace.calls) > 0
    assert all(c.latency_s > 0 for c in trace.calls)
    # The engine reuses the stable prompt prefix across the calls of a scene.
    assert trace.totals.cached_tokens > 0
