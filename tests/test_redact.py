"""Secrets are masked in every message: URL credentials, secret query values, API keys."""

from __future__ import annotations

from matrix_align.redact import redact, register_secret


def test_url_credentials_and_secret_parameters_are_masked() -> None:
    text = (
        "Cannot reach http://user:pa55@127.0.0.1:9/v1 (https://tok3n@host/v1, "
        "http://h/v1?api_key=abc123&x=1)"
    )
    shown = redact(text)
    for secret in ("user", "pa55", "tok3n", "abc123"):
        assert secret not in shown
    assert "http://***@127.0.0.1:9/v1" in shown and "x=1" in shown


def test_registered_keys_and_their_prefix_are_masked() -> None:
    register_secret("sk-test-0123456789abcdef")
    shown = redact("Incorrect API key provided: sk-test-0*****cdef (sk-test-0123456789abcdef)")
    assert "0123456789" not in shown and "sk-test-0" not in shown
    assert redact("no secrets here") == "no secrets here"
