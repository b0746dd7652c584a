"""What stands in front of the routes: the Host check of a loopback server, the client key,
the body's type and size; and the package staying importable without the serve extra."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from matrix_align.serve.settings import ServeSettings
from tests.conftest import run_main
from tests.serve.conftest import WAIT_S, LoopbackServer, echo_model

BODY = {"model": "matrix-align", "messages": [{"role": "user", "content": "Why?"}]}


def post(server: LoopbackServer, **kwargs: object) -> httpx.Response:
    return httpx.post(server.base_url + "/chat/completions", timeout=WAIT_S, **kwargs)


def test_a_loopback_server_answers_only_its_loopback_names(echo_server: LoopbackServer) -> None:
    """A web page that points its own domain at 127.0.0.1 (DNS rebinding) is refused."""
    refused = post(echo_server, json=BODY, headers={"Host": "attacker.example:8100"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "host_not_allowed"
    for host in ("localhost:8100", "127.0.0.1", "[::1]:8100"):
        assert post(echo_server, json=BODY, headers={"Host": host}).status_code == 200, host


def test_without_the_host_check_any_name_is_answered() -> None:
    with LoopbackServer(echo_model(), ServeSettings(allowed_hosts=None)) as server:
        response = post(server, json=BODY, headers={"Host": "matrix.internal:8100"})
    assert response.status_code == 200


def test_the_body_must_be_json_and_not_huge() -> None:
    with LoopbackServer(echo_model(), ServeSettings(max_body_bytes=1024)) as server:
        form = post(server, content=b"model=x", headers={"Content-Type": "text/plain"})
        assert form.status_code == 400 and "Content-Type" in form.json()["error"]["message"]
        huge = post(server, content=b"[" + b"0," * 1024 + b"0]",
                    headers={"Content-Type": "application/json"})  # fmt: skip
        assert huge.status_code == 413
        assert huge.json()["error"]["code"] == "request_too_large"


def test_a_body_past_the_json_parser_limits_is_a_400_not_a_500() -> None:
    headers = {"Content-Type": "application/json"}
    with LoopbackServer(echo_model(), ServeSettings(max_body_bytes=1_000_000)) as server:
        deep = post(server, content=b"[" * 100_000, headers=headers)
        big = post(server, content=b'{"model": ' + b"9" * 5000 + b"}", headers=headers)
        assert post(server, json=BODY).status_code == 200  # and it still answers
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]["message"]
    assert big.status_code == 400 and "4,300 digits" in big.json()["error"]["message"]


def test_the_key_is_checked_in_constant_time_on_every_route_but_health() -> None:
    with LoopbackServer(echo_model(), ServeSettings(api_key="s3cret-key")) as server:
        assert server.get("/v1/models").status_code == 401
        ok = server.get("/v1/models", headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200
        assert (
            server.get("/v1/models", headers={"Authorization": "Basic s3cret-key"}).status_code
            == 401
        )  # noqa: E501
        assert server.get("/health").status_code == 200


def test_import_matrix_align_and_the_cli_stay_light() -> None:
    code = (
        "import sys, matrix_align, matrix_align.cli.app; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'fastapi') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S, check=True
    )
    assert result.stdout.strip() == "[]"


def test_without_the_serve_extra_the_command_names_it(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes find_spec report it missing
    code, output = run_main(monkeypatch, capsys, "serve", "--backend", "scripted")
    assert code == 2
    assert "needs uvicorn" in output and "pip install 'matrix-align[serve]'" in output


@pytest.mark.parametrize("bad", ["--max-concurrency=0", "--max-queue=-1", "--port=70000"])
def test_out_of_range_options_are_usage_errors(monkeypatch, capsys, bad: str) -> None:
    code, _ = run_main(monkeypatch, capsys, "serve", "--backend", "scripted", bad)
    assert code == 2
