"""Shared fixtures. Tests that run the real embedded model are marked ``e2e``."""

from __future__ import annotations

import pytest

from matrix_align.llm.scripted import ScriptedModel, demo_rules
from matrix_align.simulation.config import SimulationConfig

# The small bundled model (Qwen2.5-Coder-0.5B-Instruct) that every test running or assembling a
# real model uses, never "the default" (the 1.1 GB 1.5B): it keeps the suite fast, and CI
# installs only it, with the local-0-5b extra.
TEST_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture
def small_config() -> SimulationConfig:
    return SimulationConfig(n_roles=2, n_steps=2)


@pytest.fixture
def demo_model() -> ScriptedModel:
    return ScriptedModel.demo()


def scripted(*rules, fallback_to_demo: bool = True) -> ScriptedModel:
    """A scripted model whose ``rules`` take precedence over the demo script."""
    return ScriptedModel([*rules, *(demo_rules() if fallback_to_demo else [])])


def run_main(monkeypatch: pytest.MonkeyPatch, capsys, *argv: str) -> tuple[int, str]:
    """Run ``matrix-align ARGV`` in-process through the real entry point (so errors become
    exit codes as for a user); returns (exit code, stdout + stderr with whitespace folded,
    since rich wraps long lines)."""
    import sys

    from matrix_align.cli.app import main

    monkeypatch.setattr(sys, "argv", ["matrix-align", *argv])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())
