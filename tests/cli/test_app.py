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


def test_version_prints_the_package_version(monkeypatch, capsys) -> None:
    import sys

    from matrix_align import __version__

    monkeypatch.setattr(sys, "argv", ["matrix-align", "--version"])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code in (0, None)
    assert capsys.readouterr().out.strip() == f"matrix-align {__version__}"


def test_every_command_documents_the_exit_codes() -> None:
    import typer.main

    group = typer.main.get_command(cli_app.app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.epilog == EXIT_CODES_HELP, name


def test_a_backend_failing_mid_run_is_a_failed_run_not_bad_input() -> None:
    from matrix_align.cli.runner import run_async
    from matrix_align.errors import EXIT_FAILED, TransientBackendError

    async def dies() -> None:
        raise TransientBackendError("503 after 3 retries")

    with pytest.raises(RunFailed, match="kept failing") as caught:
        run_async(dies())
    assert caught.value.exit_code == EXIT_FAILED


def test_verbose_logging_masks_credentials(capfd) -> None:  # noqa: ANN001
    """--log-level turns on the libraries' request logs, which quote URLs: secrets masked."""
    import logging

    from matrix_align.logs import setup_logging

    setup_logging("info")
    try:
        logging.getLogger("httpx").info("HTTP Request: POST %s", "http://user:pw@host/v1/chat")
    finally:
        logging.getLogger().handlers = []
    err = capfd.readouterr().err
    assert "INFO httpx: HTTP Request: POST http://***@host/v1/chat" in err and "pw" not in err


def test_a_bad_log_level_is_one_clear_error() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli_app.app, ["--log-level", "loud", "view", "--help"])
    assert result.exit_code == 2 and "'loud' is not one of debug, info" in result.output


def test_an_interrupt_does_not_wait_for_a_model_call_on_a_worker_thread(tmp_path) -> None:
    """A model call on a worker thread (the embedded model's, which cannot be interrupted)
    no longer holds the exit after Ctrl-C or SIGTERM: the command exits 130 at once."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import atexit, threading, time
        import matrix_align.cli.app as cli

        threading.Thread(target=time.sleep, args=(600,), name="matrix-align-llama_0").start()
        atexit.register(print, "exit handlers ran")

        def interrupted():
            raise KeyboardInterrupt

        cli.app = interrupted
        cli.main()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and "Traceback" not in done.stderr
    assert "exit handlers ran" in done.stdout  # e.g. the model's socket folder is removed
