"""Shared fixtures. Tests that run the real embedded model are marked ``e2e``."""

from __future__ import annotations

import pytest

from matrix_align.llm.scripted import ScriptedModel, demo_rules
from matrix_align.simulation.config import SimulationConfig


@pytest.fixture
def small_config() -> SimulationConfig:
    return SimulationConfig(n_roles=2, n_steps=2)


@pytest.fixture
def demo_model() -> ScriptedModel:
    return ScriptedModel.demo()


def scripted(*rules, fallback_to_demo: bool = True) -> ScriptedModel:
    """A scripted model whose ``rules`` take precedence over the demo script."""
    return ScriptedModel([*rules, *(demo_rules() if fallback_to_demo else [])])
