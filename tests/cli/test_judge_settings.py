"""A judge's setting is one field of BackendSpec, as every backend setting is: a throwaway
one, added in a subclass only (made the spec that ``llm.spec_text`` reads), is a KEY of
``--judge SPEC`` and of a judge in a ``--config`` file's ``judges:`` section, by its option's
name or its field's, with the model's checks, and nothing else is written for it. Judges are
a list, named in full by ``--judge``, so ``--set judges.KEY=VALUE`` is refused, pointing
there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from matrix_align.cli import options as o
from matrix_align.cli.app import app
from matrix_align.cli.judge_options import JudgeOptions
from matrix_align.cli.run_config import with_run_config
from matrix_align.errors import MatrixAlignError
from matrix_align.flags import Flag
from matrix_align.llm import spec_text
from matrix_align.llm.spec import BackendSpec
from tests.cli.test_run_config import _file


class WithThrowaway(BackendSpec):
    warmup_calls: int = Field(0, ge=0, le=9, description="Calls made before the first verdict.")
    voice: Annotated[str, Flag("--judge-voice")] = Field(
        "plain", description="A throwaway setting named by its flag."
    )


@pytest.fixture(autouse=True)
def throwaway(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subclass is the spec a judge's text or mapping is read into."""
    monkeypatch.setattr(spec_text, "BackendSpec", WithThrowaway)


def _invoke(*args: str) -> tuple[Any, list[Any]]:
    """A command with the judges' group and the simulation's, which holds --config and
    --set; it keeps the judges' specs."""
    seen: list[Any] = []

    def run(*, judges: JudgeOptions, simulation: o.SimulationOptions) -> None:
        seen.extend(judge.spec for judge in judges.backends())

    toy = typer.Typer()
    toy.command("evaluate")(with_run_config(run))
    return CliRunner().invoke(toy, list(args), env={"COLUMNS": "200"}), seen


def test_a_new_setting_is_a_key_of_judge_and_of_the_judges_section(tmp_path: Path) -> None:
    assert spec_text.option_names()["warmup_calls"] == "warmup-calls"
    result, seen = _invoke("--judge", "scripted:a,warmup-calls=2,judge-voice=posh",
                           "--judge", "scripted:b")  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = seen
    assert isinstance(a, WithThrowaway) and (a.model, a.warmup_calls, a.voice) == ("a", 2, "posh")
    assert (b.model, b.warmup_calls, b.voice) == ("b", 0, "plain")  # each judge its own
    text = ("judges:\n  - scripted:a,warmup_calls=3\n"
            "  - {backend: scripted, model: b, warmup-calls: 4, judge_voice: wry}\n")  # fmt: skip
    result, seen = _invoke("--config", _file(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert [(s.model, s.warmup_calls, s.voice) for s in seen] == [("a", 3, "plain"),
                                                                 ("b", 4, "wry")]  # fmt: skip
    given = ("--judge", "scripted:c,warmup-calls=1")
    result, seen = _invoke("--config", _file(tmp_path, text), *given)
    assert [(s.model, s.warmup_calls) for s in seen] == [("c", 1)]  # --judge replaces the list


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--judge", "scripted:a,warmup-calls=10"),
         "warmup-calls: Input should be less than or equal to 9"),
        (("--judge", "scripted:a,warmup=1"), "Not a backend setting in --judge"),
        (("--config", "judges:\n  - {backend: scripted, warmup_calls: 10}\n"),
         "warmup-calls: Input should be less than or equal to 9"),
        (("--set", "judges.warmup-calls=1"), "'judges' is not a section --set can set"),
    ],
)  # fmt: skip
def test_a_new_setting_has_the_models_checks(
    tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    if args[0] == "--config":
        args = ("--config", _file(tmp_path, args[1]))
    result, seen = _invoke(*args)
    assert isinstance(result.exception, MatrixAlignError), result.output
    assert message in result.exception.message and seen == []
    if "Not a backend setting" in message:  # the keys a judge takes name the new one
        assert "warmup-calls" in (result.exception.hint or "")
    if args[0] == "--set":
        assert "--judge SPEC" in (result.exception.hint or "")


def test_the_judge_help_names_every_setting_of_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """--judge's help lists the KEYs from the spec's fields (read as the CLI is imported, so
    the real spec's, not the throwaway's)."""
    monkeypatch.undo()
    output = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "300"}).output
    text = " ".join(output.replace("│", " ").split())  # the lines, out of their panel
    keys = text.split("KEY: a backend option without its dashes (", 1)[1].split(")", 1)[0]
    assert keys.split(", ") == list(spec_text.option_names().values())
    assert "warmup-calls" not in keys and "warmup_calls" not in BackendSpec.model_fields
