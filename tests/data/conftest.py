"""Fixtures for the data tests: never touch the network (the hub is unreachable here and a
test must not depend on it), and a tiny simulation config so scenes are cheap."""

from __future__ import annotations

import pytest

from matrix_align.simulation.config import SimulationConfig


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def tiny_config() -> SimulationConfig:
    return SimulationConfig(n_roles=1, n_steps=1)
