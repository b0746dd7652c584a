"""A simulation setting is one field of SimulationConfig: a throwaway one, added in a subclass
only, is an option of the derived group, a key of ``--set`` and of a ``--config`` file, with
its help, its flag's name and the model's checks, and nothing else is written for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from matrix_align.cli.option_groups import group, with_option_groups
from matrix_align.cli.options import SIM, ConfigLayers, SimulationOptions
from matrix_align.errors import MatrixAlignError
from matrix_align.flags import NOT_A_FLAG, Flag
from matrix_align.simulation.config import SimulationConfig


class WithThrowaway(SimulationConfig):
    crowd_noise: Annotated[int, Flag("--noise")] = Field(
        0, ge=0, le=5, description="Bystanders who chatter in every round."
    )
    weather: str = Field("fair", description="A throwaway setting named after its field.")
    hidden: Annotated[bool, NOT_A_FLAG] = Field(False, description="Only in files and --set.")


@dataclass(kw_only=True)
class ThrowawayOptions(ConfigLayers, group(WithThrowaway, panel=SIM, layered=True)):  # type: ignore[misc]
    """SimulationOptions' definition, of the subclass."""


def _invoke(*args: str) -> tuple[Any, list[WithThrowaway]]:
    seen: list[WithThrowaway] = []

    def run(simulation: ThrowawayOptions) -> None:
        seen.append(simulation.config())

    toy = typer.Typer()
    toy.command()(with_option_groups(run))
    return CliRunner().invoke(toy, list(args), env={"COLUMNS": "200"}), seen


def test_a_new_setting_is_an_option_and_a_set_key(tmp_path: Path) -> None:
    result, seen = _invoke("--noise", "3", "--weather", "rain", "--roles", "2")
    assert result.exit_code == 0, result.output
    assert (seen[0].crowd_noise, seen[0].weather, seen[0].n_roles) == (3, "rain", 2)
    _, seen = _invoke("--set", "noise=2", "--set", "hidden=true")  # by the flag's name
    assert (seen[0].crowd_noise, seen[0].hidden) == (2, True)
    _, seen = _invoke("--set", "crowd_noise=4", "--noise", "1")  # the option wins over --set
    assert seen[0].crowd_noise == 1
    file = tmp_path / "sim.yaml"
    file.write_text("noise: 5\nweather: snow\n")
    _, seen = _invoke("--config", str(file), "--set", "weather=hail")
    assert (seen[0].crowd_noise, seen[0].weather) == (5, "hail")
    _, seen = _invoke()
    assert seen[0] == WithThrowaway()  # the model's defaults


def test_a_new_setting_has_its_help_and_the_models_checks() -> None:
    result, _ = _invoke("--help")
    text = " ".join(result.output.split())
    assert "--noise" in text
    assert "Bystanders who chatter in every round (0 to 5; default: 0)." in text
    assert "--weather" in text and "--hidden" not in text  # NOT_A_FLAG
    result, _ = _invoke("--noise", "9")  # checked by the model, as a --set value would be
    assert isinstance(result.exception, MatrixAlignError)
    assert "crowd_noise: Input should be less than or equal to 5" in str(result.exception)
    with pytest.raises(MatrixAlignError, match="Unknown simulation setting 'nois'") as caught:
        ThrowawayOptions(set_values=["nois=1"]).config()
    assert "noise" in (caught.value.hint or "")


def test_the_throwaway_setting_stays_in_its_subclass() -> None:
    names = {param.name for param in SimulationOptions.parameters()}
    assert "crowd_noise" not in names and "n_roles" in names
    assert "crowd_noise" not in SimulationConfig.model_fields
