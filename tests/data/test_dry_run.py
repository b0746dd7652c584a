"""``generate --dry-run``: the plan and its estimated calls and tokens, from a rehearsal of
the settings and, once the folder holds samples, from their measured usage. On the scripted
backend the estimate is checked against the real run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from matrix_align.data.dry_run import estimate_generate
from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.estimate import TYPICAL_COMPLETION_TOKENS
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.llm.wrappers import AccountingModel
from matrix_align.simulation.config import SimulationConfig
from tests.conftest import run_main

KEY = "scripted:default"


def plan_of(config: SimulationConfig, *specs: str) -> Any:
    return build_plan([SourceSpec.parse(s) for s in specs], config=config, model_key=KEY)


def real_run(plan: Any, config: SimulationConfig, out: Path) -> dict[str, Any]:
    options = GenerateOptions(output=out, export=False)
    model = AccountingModel(ScriptedModel.demo())
    summary = asyncio.run(generate(plan, model, config, options, model_info={"key": KEY}))
    return summary["this_run"]


def assert_close(estimated: float, real: float, what: str) -> None:
    assert real > 0 and abs(estimated - real) <= 0.25 * real, f"{what}: {estimated} vs {real}"


def test_the_estimate_from_the_settings_is_within_25_percent(tmp_path: Path) -> None:
    config = SimulationConfig(n_roles=2, n_steps=2)
    plan = plan_of(config, "advbench:matrix:4", "vicuna-bench:direct:3")
    estimate = estimate_generate(plan, config, tmp_path, backend="scripted")
    assert [ln.basis for ln in (line.unit for line in estimate.lines)] == ["rehearsed (2)"] * 2
    assert [(ln.label, ln.planned, ln.pending) for ln in estimate.lines] == [
        ("advbench:matrix", 4, 4),
        ("vicuna-bench:direct", 3, 3),
    ]
    assert not tmp_path.joinpath("samples.jsonl").exists()  # nothing was run
    real = real_run(plan, config, tmp_path)
    assert_close(estimate.calls, real["calls"], "calls")
    assert_close(
        estimate.prompt_tokens + estimate.completion_tokens,
        real["prompt_tokens"] + real["completion_tokens"],
        "tokens",
    )


def test_a_folder_with_samples_is_estimated_from_its_own_figures(tmp_path: Path) -> None:
    config = SimulationConfig(n_roles=1, n_steps=2)
    real_run(plan_of(config, "advbench:matrix:2"), config, tmp_path)
    plan = plan_of(config, "advbench:matrix:5")
    estimate = estimate_generate(plan, config, tmp_path, backend="openai")
    (line,) = estimate.lines
    assert (line.planned, line.pending, line.unit.basis) == (5, 3, "measured (2)")
    real = real_run(plan, config, tmp_path)
    assert real["completed"] == 3
    assert_close(estimate.calls, real["calls"], "calls")
    assert_close(estimate.prompt_tokens, real["prompt_tokens"], "prompt tokens")
    assert_close(estimate.completion_tokens, real["completion_tokens"], "completion tokens")


def test_a_real_model_s_replies_are_counted_at_a_typical_length_within_the_cap(
    tmp_path: Path,
) -> None:
    for max_tokens in (32, 512):
        config = SimulationConfig(max_tokens=max_tokens)
        plan = plan_of(config, "vicuna-bench:direct:2")
        (line,) = estimate_generate(plan, config, tmp_path, backend="openai").lines
        assert line.unit.calls == 1
        assert line.unit.completion_tokens == min(max_tokens, TYPICAL_COMPLETION_TOKENS)


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str]:
    return run_main(monkeypatch, capsys, "generate", *args)


def test_the_command_prints_plan_estimate_and_cost_and_writes_nothing(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    base = ("--source", "advbench:matrix:2", "--backend", "scripted", "--roles", "1",
            "--steps", "1", "--output", str(out))  # fmt: skip
    code, text = run_cli(monkeypatch, capsys, *base, "--dry-run", "--price-in", "2.5",
                         "--price-out", "10")  # fmt: skip
    assert code == 0, text
    assert "plan: 2 samples" in text and "advbench:matrix" in text
    match = re.search(r"estimated: ([\d,]+) calls, ([\d,]+) prompt \+ ([\d,]+) completion", text)
    assert match, text
    calls, prompt, completion = (int(g.replace(",", "")) for g in match.groups())
    assert calls > 2 and prompt > completion > 0
    cost = (prompt * 2.5 + completion * 10) / 1e6
    assert f"estimated cost: ${cost:,.2f}" in text
    assert "no model was loaded or called" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--price-in", "1", "--price-out", "2"), "are for the estimate of --dry-run"),
        (("--dry-run", "--price-in", "1"), "Give both --price-in and --price-out"),
    ],
)
def test_prices_need_a_dry_run_and_each_other(monkeypatch, capsys, tmp_path, extra, message):
    code, text = run_cli(monkeypatch, capsys, "--source", "advbench:matrix:1", "--backend",
                         "scripted", "--output", str(tmp_path / "x"), *extra)  # fmt: skip
    assert code == 2 and message in text and "Traceback" not in text
