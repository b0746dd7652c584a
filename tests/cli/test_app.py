"""The entry point: errors are one escaped, scrubbed message with the documented exit code."""

from __future__ import annotations

import pytest

from matrix_align.cli import app as cli_app
from matrix_align.errors import EXIT_CODES_HELP, MatrixAlignError, RunFailed


def fail_with(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> int:
    def boom() -> None:
        raise exc

    monkeypatch.setattr(cli_app, "app", boom)
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    return int(info.value.code)


def test_install_hints_print_their_brackets(monkeypatch, capsys) -> None:
    code = fail_with(monkeypatch, MatrixAlignError("needs torch", hint="pip install 'x[train]'"))
    assert code == 2
    assert "pip install 'x[train]'" in capsys.readouterr().err


def test_credentials_never_reach_the_terminal(monkeypatch, capsys) -> None:
    fail_with(monkeypatch, MatrixAlignError("Cannot reach http://bob:s3cret@h:1/v1 (refused)."))
    err = capsys.readouterr().err
    assert "s3cret" not in err and "http://***@h:1/v1" in err


def test_a_failed_run_exits_1_and_the_codes_are_documented(monkeypatch, capsys) -> None:
    assert fail_with(monkeypatch, RunFailed("every sample failed")) == 1
    assert "3 partial" in EXIT_CODES_HELP
