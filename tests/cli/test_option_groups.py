"""Option groups: declared once, flattened into each command's options by
``with_option_groups``, and handed back to the command as one object; ``--config`` and
``--set`` on every command that takes simulation settings, with one precedence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.cli.option_groups import OptionGroup, group_of, with_option_groups
from matrix_align.cli.options import BackendOptions, SimulationOptions
from matrix_align.errors import EXIT_USAGE, MatrixAlignError
from matrix_align.folders import read_run
from tests.conftest import run_main

SIM_COMMANDS = ("simulate", "generate", "evaluate", "serve", "sweep")


@dataclass(kw_only=True)
class Colour(OptionGroup):
    hue: Annotated[str, typer.Option("--hue", help="A hue.", rich_help_panel="Colour")] = "red"
    light: Annotated[int | None, typer.Option("--light", min=0, help="Lightness.")] = None


def _toy_app(seen: list) -> typer.Typer:
    toy = typer.Typer()

    @toy.command()
    @with_option_groups
    def paint(name: Annotated[str, typer.Argument()], colour: Colour, *, big: bool = False) -> None:
        seen.append((name, colour, big))

    return toy


def test_a_group_becomes_options_and_comes_back_as_one_object() -> None:
    seen: list = []
    toy = _toy_app(seen)
    result = CliRunner().invoke(toy, ["wall", "--hue", "blue", "--light", "3", "--big"])
    assert result.exit_code == 0, result.output
    assert seen == [("wall", Colour(hue="blue", light=3), True)]
    result = CliRunner().invoke(toy, ["door"])
    assert seen[-1] == ("door", Colour(), False)  # the fields' defaults
    result = CliRunner().invoke(toy, ["door", "--light", "-1"])
    assert result.exit_code == 2  # typer still checks the option (min=0)
    help_text = CliRunner().invoke(toy, ["--help"], env={"COLUMNS": "200"}).output
    assert "--hue" in help_text and "A hue." in help_text and "Colour" in help_text


@dataclass(kw_only=True)
class Tint(OptionGroup):
    hue: Annotated[str, typer.Option("--tint")] = "x"


def test_an_option_declared_twice_is_refused_at_definition() -> None:
    def paint(colour: Colour, tint: Tint) -> None: ...

    with pytest.raises(TypeError, match="'hue' is declared twice"):
        with_option_groups(paint)


@pytest.mark.parametrize("command", SIM_COMMANDS)
def test_every_simulation_command_has_both_groups_in_its_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for group in (group_of(BackendOptions), SimulationOptions):
        for param in group.parameters():
            option = param.annotation.__metadata__[0].default.split("/")[0]  # its first name
            assert option in result.output, (command, option)
    assert "--set" in result.output and "--config" in result.output


def test_precedence_options_over_set_over_config_over_defaults(tmp_path: Path) -> None:
    file = tmp_path / "sim.yaml"
    file.write_text("roles: 2\nn_steps: 2\ndepth: 2\nmemory-budget: 7\n")
    options = SimulationOptions(
        config_file=file, set_values=["steps=3", "depth=0", "memory_budget=8"], reaction_depth=1
    )
    config = options.config()
    assert config.n_roles == 2  # the file (by the option's name)
    assert config.n_steps == 3  # --set over the file (which named the field)
    assert config.reaction_depth == 1  # the option over --set and the file
    assert config.memory_budget == 8  # --set by the field name, dashes or not
    assert config.strictness == "normal" and config.temperature == 0.2  # the defaults
    assert SimulationOptions(config_file=Path("paper"), set_values=["memory-budget=5"]).config(
    ).memory_budget == 5  # fmt: skip


def test_unknown_keys_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="Unknown simulation setting 'rolez'") as caught:
        SimulationOptions(set_values=["rolez=3"]).config()
    assert caught.value.exit_code == EXIT_USAGE
    assert "roles" in (caught.value.hint or "") and "memory-budget" in (caught.value.hint or "")
    file = tmp_path / "sim.yaml"
    file.write_text("stepz: 2\n")
    with pytest.raises(MatrixAlignError, match=f"'stepz' in {file}"):
        SimulationOptions(config_file=file).config()
    with pytest.raises(MatrixAlignError, match="--set expects KEY=VALUE"):
        SimulationOptions(set_values=["roles"]).config()


def test_simulate_takes_set_and_refuses_an_unknown_key(monkeypatch, capsys) -> None:
    base = ("simulate", "How do I pick a lock?", "--backend", "scripted", "--steps", "1")
    code, text = run_main(monkeypatch, capsys, *base, "--set", "roles=3", "--json")
    assert code == 0, text
    trace = json.loads(text[text.index("{") :])
    assert trace["config"]["n_roles"] == 3 and trace["config"]["n_steps"] == 1
    code, text = run_main(monkeypatch, capsys, *base, "--set", "roles=3", "--roles", "1", "--json")
    assert json.loads(text[text.index("{") :])["config"]["n_roles"] == 1  # the option wins
    code, text = run_main(monkeypatch, capsys, *base, "--set", "rolez=3")
    assert code == EXIT_USAGE and "Unknown simulation setting 'rolez' given to --set" in text
    assert "roles, seed, steps" in text  # the allowed names


def test_generate_takes_set(monkeypatch, capsys, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run_main(
        monkeypatch, capsys, "generate", "--backend", "scripted", "--source",
        "advbench:matrix:1", "--hub", "never", "--no-export", "-q", "--steps", "1",
        "--set", "roles=3", "--output", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert read_run(out)["config"]["n_roles"] == 3


def test_evaluate_takes_set(monkeypatch, capsys, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    code, text = run_main(
        monkeypatch, capsys, "evaluate", "--backend", "scripted", "--hub", "never", "-S",
        "matrix", "-B", "advbench", "--limit", "1", "--metrics", "refusal", "-q", "--steps",
        "1", "--set", "roles=3", "-o", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert read_run(out)["simulation"]["n_roles"] == 3


@pytest.mark.parametrize("command", ("generate", "evaluate", "sweep"))
def test_an_unknown_set_key_stops_every_command_before_any_work(
    command: str, monkeypatch, capsys, tmp_path: Path
) -> None:
    extra = ("--grid", "steps=1") if command == "sweep" else ()
    code, text = run_main(
        monkeypatch, capsys, command, *extra, "--backend", "scripted", "--set", "depht=1",
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == EXIT_USAGE and "Unknown simulation setting 'depht'" in text
    assert not (tmp_path / "out" / "run.json").exists()


def test_train_set_reaches_a_setting_that_has_its_own_option() -> None:
    from matrix_align.cli.train_options import TrainData, TrainRecipe, TrainRun, overrides

    run = TrainRun(set_=["lora_r=16", "max_length=2048", "trainer_args.optim=sgd"])
    values = overrides(TrainData(), TrainRecipe(max_length=512), run)
    assert values["lora_r"] == 16  # --lora-r not given: --set stands
    assert values["max_length"] == 512  # --max-length given: it wins over --set
    assert values["trainer_args"] == {"optim": "sgd"}


def test_help_quotes_the_defaults_of_the_config_classes() -> None:
    from matrix_align.cli.option_groups import field_default
    from matrix_align.simulation.config import SimulationConfig
    from matrix_align.systems import SystemOptions
    from matrix_align.train.config import TrainConfig

    assert field_default(TrainConfig, "learning_rate") == "2e-5"
    assert field_default(TrainConfig, "num_train_epochs") == "3"
    assert field_default(SimulationConfig, "adaptive_plan") == "true"
    env = {"COLUMNS": "300"}
    text = " ".join(CliRunner().invoke(app, ["evaluate", "--help"], env=env).output.split())
    assert f"Samples drawn by best-of-n (2 to 32; default: {SystemOptions().best_of_n})." in text
    text = " ".join(CliRunner().invoke(app, ["train", "--help"], env=env).output.split())
    assert f"LoRA rank ({TrainConfig.model_fields['lora_r'].default})." in text
