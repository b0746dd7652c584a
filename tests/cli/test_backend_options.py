"""The backend's options are BackendSpec's fields: a new setting is one field in one file and
appears on the command line; the flags users type today stay; the openai client's
environment variables are read as it reads them."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
import typer
from pydantic import Field, field_validator
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.cli.option_groups import group, with_option_groups
from matrix_align.flags import Flag
from matrix_align.llm.spec import BackendSpec
from matrix_align.testing.fake_openai_server import FakeOpenAIServer
from tests.conftest import run_main

# Every backend flag and alias documented before the options were derived from the spec.
TODAYS_FLAGS = ("--backend", "-b", "--model", "-m", "--base-url", "--api-key-env", "--parallel",
                "--threads", "--request-timeout", "--rpm", "--tpm")  # fmt: skip


class WithThrowaway(BackendSpec):
    """BackendSpec and one more setting, declared as a new backend setting would be: a field
    with its default, bounds and help, nothing else anywhere."""

    warmup_calls: int = Field(0, ge=0, le=9, description="Calls made before the first scene.")
    voice: Annotated[Literal["plain", "posh"], Flag("--voice", "-V")] = Field(
        "plain", description="A throwaway choice."
    )

    @field_validator("warmup_calls")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value == 7:
            raise ValueError("seven warm-up calls are bad luck")
        return value


def _toy(seen: list, prefix: str = "") -> typer.Typer:
    """A command taking the spec's options, as the real commands take BackendSpec's."""

    def run(backend: WithThrowaway) -> None:
        seen.append(backend)

    # Set here, not written in the signature: the group is made per call (with the prefix).
    run.__annotations__["backend"] = Annotated[
        WithThrowaway, group(WithThrowaway, prefix, panel="Backend")
    ]
    toy = typer.Typer()
    toy.command()(with_option_groups(run))
    return toy


def test_a_new_field_of_the_spec_is_an_option() -> None:
    seen: list = []
    toy = _toy(seen)
    result = CliRunner().invoke(toy, ["--warmup-calls", "2", "-V", "posh", "-b", "scripted"])
    assert result.exit_code == 0, result.output
    assert seen == [WithThrowaway("scripted", warmup_calls=2, voice="posh")]
    assert CliRunner().invoke(toy, ["--warmup-calls", "10"]).exit_code == 2  # le=9, by typer
    help_text = CliRunner().invoke(toy, ["--help"], env={"COLUMNS": "200"}).output
    assert "--warmup-calls" in help_text
    assert "Calls made before the first scene (default: 0)." in help_text  # the model's default
    assert "--request-timeout" in help_text and "--retries" not in help_text  # NOT_A_FLAG


def test_the_models_validation_is_one_clear_error_naming_the_option() -> None:
    from matrix_align.errors import MatrixAlignError

    result = CliRunner().invoke(_toy([]), ["--warmup-calls", "7"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "--warmup-calls" in result.exception.message and "bad luck" in result.exception.message


def test_a_prefix_makes_a_second_group_of_the_same_spec() -> None:
    seen: list = []
    result = CliRunner().invoke(_toy(seen, "judge"), ["--judge-backend", "scripted",
                                                      "--judge-request-timeout", "9"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[0].backend == "scripted" and seen[0].timeout_s == 9.0
    assert CliRunner().invoke(_toy([], "judge"), ["-b", "scripted"]).exit_code == 2  # no alias


@pytest.mark.parametrize("command", ("simulate", "generate", "evaluate", "serve", "sweep"))
def test_the_flags_users_type_today_stay(command: str) -> None:
    text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    for flag in TODAYS_FLAGS:
        assert f" {flag} " in text or f" {flag}," in text, (command, flag)
    assert "$OPENAI_BASE_URL" in " ".join(text.split())


def test_the_openai_client_variables_are_the_defaults(monkeypatch, capsys) -> None:
    """OPENAI_BASE_URL and OPENAI_API_KEY, as the openai client reads them: a shell set up for
    it needs neither --base-url nor --api-key-env; --base-url still wins."""
    with FakeOpenAIServer(require_api_key="the-right-key") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "the-right-key")
        base = ("simulate", "Hi?", "--backend", "openai", "--model", server.models[0])
        code, text = run_main(monkeypatch, capsys, *base, "--roles", "1", "--steps", "1",
                              "--json")  # fmt: skip
        assert code == 0, text
        assert server.requests  # reached through the variables alone
        code, text = run_main(monkeypatch, capsys, *base, "--base-url", "http://127.0.0.1:9/v1")
        assert code != 0 and "127.0.0.1:9" in text  # the option wins over the variable
    assert BackendSpec("embedded").base_url == ()  # only the openai backend reads it
    monkeypatch.delenv("OPENAI_BASE_URL")
    code, text = run_main(monkeypatch, capsys, *base)
    assert code != 0 and "needs --base-url (or the environment variable OPENAI_BASE_URL" in text
