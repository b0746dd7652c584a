"""An inspect evaluation pointed at ``matrix-align serve``, as a harness user runs one:
inspect's own ``openai`` provider talks to a loopback server on the scripted backend.

HH-RLHF's harmless-base items are dialogues, which inspect sends as they are (earlier turns
and all); the server used to refuse them on the first sample. Now each is rendered into the
one query its scene answers, exactly as the project renders that item everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")
pytest.importorskip("starlette", reason="needs the serve extra")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

from matrix_align.data.sources import load_source  # noqa: E402
from matrix_align.inspect.tasks import hh_harmless  # noqa: E402
from matrix_align.llm.scripted import ScriptedModel, demo_rules  # noqa: E402
from tests.inspect.mocks import grader  # noqa: E402
from tests.serve.conftest import LoopbackServer  # noqa: E402

ITEMS = 3


def test_hh_harmless_through_serve_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    records = load_source("hh-harmless", hub="never").records[:ITEMS]
    assert any(r.messages for r in records), "the sample should hold a multi-turn dialogue"
    script = ScriptedModel(demo_rules())
    with LoopbackServer(script, n_roles=1, n_steps=1) as server:
        (log,) = inspect_eval(
            hh_harmless(hub="never"),
            # inspect's provider for OpenAI-compatible servers ("openai/..." would use the
            # Responses API for an unknown model name, which serve does not speak).
            model="openai-api/matrix/matrix-align",
            model_base_url=server.base_url,
            model_args={"api_key": "unused"},
            model_roles={"grader": grader().model()},
            limit=ITEMS,
            log_dir=str(tmp_path / "logs"),
            display="none",
        )
    log = read_eval_log(log.location)
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == ITEMS
    for sample in log.samples:
        assert sample.error is None
        assert sample.output.completion  # the scene's answer
        assert sample.scores is not None and "refusal" in sample.scores
    # Each item's scene answered the item's query as the project renders it.
    first_calls = [r for r in script.requests if r.schema is None and len(r.messages) == 1]
    asked = {r.messages[-1]["content"] for r in first_calls}
    assert {r.prompt for r in records} <= asked
