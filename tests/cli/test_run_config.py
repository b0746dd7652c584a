"""``--config`` is the whole run: each section of the file (backend, judges, simulation,
systems, data) reaches the settings of the command's group of that name, under ``--set
SECTION.KEY=VALUE`` and the options given; an older file of top-level simulation settings
and the ``paper`` profile work as before; a bad section or key is one clear error before any
model is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from matrix_align.cli import options as o
from matrix_align.cli.data_options import BenchmarkData
from matrix_align.cli.evaluate_options import EvalSystems
from matrix_align.cli.generate_options import GenerateData
from matrix_align.cli.judge_options import JudgeOptions
from matrix_align.cli.run_config import with_run_config
from matrix_align.errors import MatrixAlignError
from matrix_align.llm.spec import BackendSpec
from tests.conftest import run_main

RUN = """\
backend:
  backend: scripted
  model: under-test
  parallel: 3
  request-timeout: 30
judges:
  - scripted:judge-a,parallel=2
  - {backend: scripted, model: judge-b, api_key_env: JUDGE_B_KEY}
simulation:
  roles: 2
  memory_budget: 4
  intent_event: false
systems:
  debate-rounds: 3
  best_of_n: 6
data:
  benchmarks: [advbench, harmfulqa]
  limit: 0.5
  epochs: 2
  shuffle: true
"""


def _evaluate_like(*args: str) -> tuple[Any, dict[str, Any]]:
    """A command with evaluate's groups, which keeps what it receives."""
    seen: dict[str, Any] = {}

    def run(
        *,
        backend: o.BackendOptions,
        simulation: o.SimulationOptions,
        judges: JudgeOptions,
        systems: EvalSystems,
        data: BenchmarkData,
    ) -> None:
        seen.update(backend=backend, simulation=simulation.config(), systems=systems.options(),
                    judges=[judge.spec for judge in judges.backends()], data=data)  # fmt: skip

    toy = typer.Typer()
    toy.command("evaluate")(with_run_config(run))
    return CliRunner().invoke(toy, list(args), env={"COLUMNS": "200"}), seen


def _file(tmp_path: Path, text: str = RUN, name: str = "run.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_each_section_reaches_the_commands_settings(tmp_path: Path) -> None:
    result, seen = _evaluate_like("--config", _file(tmp_path))
    assert result.exit_code == 0, result.output
    backend = seen["backend"]
    assert (backend.backend, backend.model, backend.parallel, backend.timeout_s) == (
        "scripted", "under-test", 3, 30.0,
    )  # fmt: skip
    judge_a, judge_b = seen["judges"]
    assert (judge_a.model, judge_a.parallel) == ("judge-a", 2)
    assert (judge_b.model, judge_b.api_key_env) == ("judge-b", "JUDGE_B_KEY")
    sim = seen["simulation"]
    assert (sim.n_roles, sim.memory_budget, sim.intent_event) == (2, 4, False)
    assert (seen["systems"].debate_rounds, seen["systems"].best_of_n) == (3, 6)
    data = seen["data"]
    assert (data.benchmarks, data.limit, data.epochs, data.shuffle) == (
        ["advbench", "harmfulqa"], 0.5, 2, True,
    )  # fmt: skip


def test_options_beat_set_beat_the_file(tmp_path: Path) -> None:
    run = _file(tmp_path)
    sets = ("--set", "backend.parallel=5", "--set", "systems.best-of-n=8", "--set",
            "data.epochs=3", "--set", "roles=3", "--set", "simulation.memory-budget=5")  # fmt: skip
    result, seen = _evaluate_like("--config", run, *sets)
    assert result.exit_code == 0, result.output
    assert seen["backend"].parallel == 5 and seen["systems"].best_of_n == 8
    assert seen["data"].epochs == 3
    assert (seen["simulation"].n_roles, seen["simulation"].memory_budget) == (3, 5)
    given = ("--parallel", "7", "--best-of-n", "9", "--epochs", "4", "--roles", "4",
             "--judge", "scripted:judge-c", "--limit", "1")  # fmt: skip
    result, seen = _evaluate_like("--config", run, *sets, *given)
    assert result.exit_code == 0, result.output
    assert seen["backend"].parallel == 7 and seen["systems"].best_of_n == 9
    assert (seen["data"].epochs, seen["data"].limit) == (4, 1)
    assert seen["simulation"].n_roles == 4
    assert [judge.model for judge in seen["judges"]] == ["judge-c"]  # the list is replaced
    assert seen["backend"].model == "under-test"  # what no layer above sets stays the file's


def test_an_option_given_at_its_default_still_wins(tmp_path: Path) -> None:
    """Given on the command line, not merely equal to the default: --epochs 1 beats the
    file's 2, and --hub auto its never."""
    run = _file(tmp_path, "data:\n  epochs: 2\n  hub: never\n")
    result, seen = _evaluate_like("--config", run, "--epochs", "1", "--hub", "auto")
    assert result.exit_code == 0, result.output
    assert (seen["data"].epochs, seen["data"].hub) == (1, "auto")


def test_set_alone_without_a_file() -> None:
    sets = ("backend.backend=scripted", "data.benchmarks=[xstest]", "systems.debate_agents=3")
    result, seen = _evaluate_like(*(arg for value in sets for arg in ("--set", value)))
    assert result.exit_code == 0, result.output
    assert seen["backend"].backend == "scripted" and seen["data"].benchmarks == ["xstest"]
    assert seen["systems"].debate_agents == 3


def test_the_older_files_and_the_paper_profile_work_as_before(tmp_path: Path) -> None:
    flat = _file(tmp_path, "roles: 2\nsteps: 1\nmemory_budget: 4\n", "flat.yaml")
    result, seen = _evaluate_like("--config", flat, "--steps", "3")
    assert result.exit_code == 0, result.output
    sim = seen["simulation"]
    assert (sim.n_roles, sim.n_steps, sim.memory_budget) == (2, 3, 4)
    assert seen["backend"] == BackendSpec()
    result, seen = _evaluate_like("--config", "paper", "--set", "plan_from=request")
    assert result.exit_code == 0, result.output
    sim = seen["simulation"]
    assert (sim.final_prompt, sim.n_roles, sim.plan_from) == ("paper", 5, "request")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backnd:\n  parallel: 2\nsimulation:\n  roles: 2\n", "backnd is no section"),
        ("roles: 2\nbackend:\n  parallel: 2\n", "roles is no section"),
        ("backend:\n  paralel: 2\n", "Not a backend setting in the backend: section"),
        ("backend:\n  parallel: 999\n", "parallel: Input should be less than or equal to 256"),
        ("judges:\n  - nope:x\n", "Unknown backend 'nope' in judge 1 in the judges: section"),
        ("judges:\n  - {backend: scripted, modle: x}\n", "Not a backend setting in judge 1 in"),
        ("simulation:\n  rols: 2\n", "Unknown simulation setting 'rols'"),
        ("systems:\n  debate_agents: 1\n", "debate_agents: Input should be greater than"),
        ("systems:\n  rounds: 1\n", "Not a system setting in the systems: section"),
        ("data:\n  epochs: 500\n", "Invalid value for epochs in the data: section"),
        ("data:\n  source: [advbench]\n", "Not a data setting of evaluate"),
        ("data: [1, 2]\n", "data: in"),
    ],
)
def test_a_bad_section_or_key_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    result, seen = _evaluate_like("--config", path)
    assert isinstance(result.exception, MatrixAlignError), result.output
    assert message in str(result.exception) and seen == {}
    assert path in str(result.exception) or "Unknown simulation" in str(result.exception)


def test_a_bad_set_is_one_clear_error() -> None:
    for bad, message in (
        ("judges.x=1", "'judges' is not a section"),
        ("foo.bar=1", "'foo' is not a section"),
        ("backend.paralel=2", "Not a backend setting in --set backend"),
    ):
        result, seen = _evaluate_like("--set", bad)
        assert isinstance(result.exception, MatrixAlignError), result.output
        assert message in str(result.exception) and seen == {}


def test_generate_takes_its_own_data_and_leaves_the_rest_with_a_note(tmp_path: Path) -> None:
    """One file serves generate and evaluate: generate has no judges or system knobs, so
    it says it leaves them; its data options are its own (--source, --input...)."""
    seen: dict[str, Any] = {}

    def run(*, backend: o.BackendOptions, simulation: o.SimulationOptions,
            data: GenerateData) -> None:  # fmt: skip
        seen.update(backend=backend, data=data)

    toy = typer.Typer()
    toy.command("generate")(with_run_config(run))
    text = "backend:\n  backend: scripted\njudges: [scripted]\nsystems: {best_of_n: 3}\n"
    data = "data:\n  source: advbench:matrix:3\n  input: [queries.jsonl]\n  hub: never\n"
    result = CliRunner().invoke(toy, ["--config", _file(tmp_path, text + data)])
    assert result.exit_code == 0, result.output
    assert "generate leaves judges:, systems: (for other commands)" in result.output
    assert seen["backend"].backend == "scripted"
    assert (seen["data"].source, seen["data"].input_file, seen["data"].hub) == (
        ["advbench:matrix:3"], [Path("queries.jsonl")], "never",
    )  # fmt: skip
    result = CliRunner().invoke(toy, ["--set", "systems.best_of_n=3"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "generate has no systems settings" in str(result.exception)


def test_a_real_command_reads_the_file_and_stops_before_any_model(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    run = _file(tmp_path, "backend:\n  backend: scripted\njudges: [scripted:judge]\n"
                "simulation:\n  roles: 1\n  steps: 1\ndata:\n  benchmarks: advbench\n"
                "  limit: 2\n  hub: never\n")  # fmt: skip
    code, text = run_main(monkeypatch, capsys, "evaluate", "--config", run, "--dry-run",
                          "-S", "vanilla", "-o", str(tmp_path / "eval"))  # fmt: skip
    assert code == 0, text
    assert "advbench 2 items" in text and "judges: scripted:judge" in text

    def no_model(self: BackendSpec) -> Any:
        raise AssertionError("a model was opened")

    monkeypatch.setattr(BackendSpec, "open", no_model)
    bad = _file(tmp_path, "backend:\n  backend: scripted\nsimulation:\n  rols: 1\n", "bad.yaml")
    for command in ("simulate", "generate", "evaluate", "sweep", "serve"):
        extra = {"generate": ("-o", str(tmp_path / "g")), "evaluate": ("-o", str(tmp_path / "e")),
                 "sweep": ("--grid", "roles=1,2", "-o", str(tmp_path / "s"))}  # fmt: skip
        code, text = run_main(monkeypatch, capsys, command, "--config", bad,
                              *extra.get(command, ()))  # fmt: skip
        assert code == 2 and "Unknown simulation setting 'rols' in" in text, (command, text)


def test_the_documented_example_is_a_valid_run(tmp_path: Path) -> None:
    """docs/simulation.md's example file, with every section, is read as it says."""
    docs = Path(__file__).parents[2] / "docs" / "simulation.md"
    text = docs.read_text(encoding="utf-8").split("## A run in one file", 1)[1]
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    result, seen = _evaluate_like("--config", _file(tmp_path, example))
    assert result.exit_code == 0, result.output
    assert seen["backend"].parallel == 16 and len(seen["judges"]) == 2
    assert seen["simulation"].memory_budget == 6 and seen["systems"].best_of_n == 8
    assert (seen["data"].limit, seen["data"].hub) == (50, "never")
