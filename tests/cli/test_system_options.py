"""A system knob is one field of SystemOptions: a throwaway one, added in a subclass only, is
an option of evaluate's systems group, a key of a ``--config`` file's ``systems:`` section
and of ``--set systems.KEY=VALUE``, with its help, its flag's name and the model's checks,
and nothing else is written for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import Field
from typer.testing import CliRunner

from matrix_align.cli import options as o
from matrix_align.cli.evaluate_options import SYS, EvalSystems, SystemsUnderTest
from matrix_align.cli.option_groups import group
from matrix_align.cli.run_config import with_run_config
from matrix_align.errors import MatrixAlignError
from matrix_align.flags import Flag
from matrix_align.systems import SystemOptions
from tests.cli.test_run_config import _file


class WithThrowaway(SystemOptions):
    draft_count: int = Field(1, ge=1, le=4, description="Drafts written before the answer.")
    mood: Annotated[str, Flag("--agents-mood")] = Field(
        "calm", description="A throwaway knob named by its flag."
    )


@dataclass(kw_only=True)
class ThrowawaySystems(SystemsUnderTest, group(WithThrowaway, panel=SYS, layered=True)):  # type: ignore[misc]
    """EvalSystems' definition, of the subclass."""


def _invoke(*args: str) -> tuple[Any, list[WithThrowaway]]:
    """A command with evaluate's systems group (of the subclass) and the simulation's group,
    which holds --config and --set."""
    seen: list[WithThrowaway] = []

    def run(*, systems: ThrowawaySystems, simulation: o.SimulationOptions) -> None:
        seen.append(systems.options())

    toy = typer.Typer()
    toy.command("evaluate")(with_run_config(run))
    return CliRunner().invoke(toy, list(args), env={"COLUMNS": "200"}), seen


def test_a_new_knob_is_an_option_a_file_key_and_a_set_key(tmp_path: Path) -> None:
    result, seen = _invoke("--draft-count", "3", "--agents-mood", "grim", "--best-of-n", "5")
    assert result.exit_code == 0, result.output
    assert seen == [WithThrowaway(draft_count=3, mood="grim", best_of_n=5)]
    run = _file(tmp_path, "systems:\n  draft-count: 2\n  agents_mood: wry\n")  # field or flag
    result, seen = _invoke("--config", run)
    assert result.exit_code == 0, result.output
    assert (seen[0].draft_count, seen[0].mood) == (2, "wry")
    _, seen = _invoke("--config", run, "--set", "systems.draft_count=4")  # --set over the file
    assert (seen[0].draft_count, seen[0].mood) == (4, "wry")
    _, seen = _invoke("--set", "systems.agents-mood=odd", "--agents-mood", "grim")
    assert seen[0].mood == "grim"  # the option wins over --set
    _, seen = _invoke("--config", run, "--draft-count", "1")  # given at its default, still wins
    assert seen[0].draft_count == 1
    _, seen = _invoke()
    assert seen[0] == WithThrowaway()  # the model's defaults


def test_a_new_knob_has_its_help_and_the_models_checks(tmp_path: Path) -> None:
    result, _ = _invoke("--help")
    text = " ".join(result.output.split())
    assert "--draft-count" in text
    assert "Drafts written before the answer (1 to 4; default: 1)." in text  # the model's
    assert "--agents-mood" in text and "--mood " not in text  # the Flag's name
    assert text.index("--systems") < text.index("--draft-count") < text.index("--selector")
    for args in (("--draft-count", "9"), ("--set", "systems.draft-count=9"),
                 ("--config", _file(tmp_path, "systems:\n  draft_count: 9\n"))):  # fmt: skip
        result, seen = _invoke(*args)  # every layer checked by the model, alike
        assert isinstance(result.exception, MatrixAlignError), (args, result.output)
        assert "draft_count: Input should be less than or equal to 4" in str(result.exception)
        assert seen == []
    result, _ = _invoke("--set", "systems.drafts=1")
    assert isinstance(result.exception, MatrixAlignError), result.output
    assert "Not a system setting in --set systems.KEY: 'drafts'" in result.exception.message
    assert "draft_count" in (result.exception.hint or "") and "mood" in result.exception.hint


def test_the_throwaway_knob_stays_in_its_subclass() -> None:
    names = [param.name for param in EvalSystems.parameters()]
    assert "draft_count" not in names and "draft_count" not in SystemOptions.model_fields
    # evaluate's knobs are SystemOptions' fields, no more and no fewer, between --tag and
    # --selector.
    assert names[:2] == ["systems", "tag"] and names[-1] == "selector"
    assert names[2:-1] == list(SystemOptions.model_fields)
