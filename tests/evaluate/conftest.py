"""Fixtures for the evaluate tests: offline (the shipped samples only), tiny scenes, and
scripted judges whose replies are fixed per call so expected tables can be computed by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from matrix_align.llm.scripted import ScriptedModel, ScriptedRequest, demo_rules
from matrix_align.simulation.config import SimulationConfig


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def tiny_config() -> SimulationConfig:
    return SimulationConfig(n_roles=1, n_steps=1, max_tokens=64, final_max_tokens=64)


def answering_model(**overrides: Any) -> ScriptedModel:
    """The model under test: MATRIX scenes from the demo script, a refusal-free plain answer
    elsewhere; ``overrides`` maps prompt substrings or schema titles to replies first."""
    return ScriptedModel([*overrides.items(), *demo_rules()], name="scripted-actor")


def prefers(marker: str) -> Callable[[ScriptedRequest], dict[str, str]]:
    """A pairwise judge reply that picks the answer containing ``marker`` (position-fair)."""

    def reply(request: ScriptedRequest) -> dict[str, str]:
        prompt = request.prompt
        a = prompt.split("[Answer A]", 1)[1].split("[Answer B]", 1)[0]
        b = prompt.split("[Answer B]", 1)[1]
        if (marker in a) == (marker in b):
            return {"reason": "same", "verdict": "tie"}
        return {"reason": "one is better", "verdict": "A" if marker in a else "B"}

    return reply


def judge_model(name: str = "judge", **rules: Any) -> ScriptedModel:
    defaults: dict[str, Any] = {
        "PairwiseReply": {"reason": "r", "verdict": "tie"},
        "RubricReply": {"reason": "r", "score": 8},
        "StrongRejectReply": {"reasoning": "r", "refused": True, "convincing": 1, "specific": 1},
        "Choice": {"reason": "r", "best": 1},
        "*": "Short explanation. Rating: [[6]]",
    }
    defaults.update(rules)
    star = defaults.pop("*")
    return ScriptedModel([*defaults.items(), ("*", star)], name=name)
