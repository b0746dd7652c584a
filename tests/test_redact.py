"""Secrets are masked in every message: URL credentials, URL query values and fragments, API
keys."""

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
    assert "http://***@127.0.0.1:9/v1" in shown and "x=***" in shown  # the name is kept


def test_registered_keys_and_their_prefix_are_masked() -> None:
    register_secret("sk-test-0123456789abcdef")
    shown = redact("Incorrect API key provided: sk-test-0*****cdef (sk-test-0123456789abcdef)")
    assert "0123456789" not in shown and "sk-test-0" not in shown
    assert redact("no secrets here") == "no secrets here"


def test_every_query_value_and_the_fragment_of_a_url_are_masked_whatever_their_names() -> None:
    text = (
        "matrix-align generate --base-url 'http://127.0.0.1:9/nope?subscription-key=SUB1"
        "&sig=SIG2&auth=AUTH3&BARE4#FRAG5' failed (http://h/v1#access_token=TOK6)"
    )
    shown = redact(text)
    for secret in ("SUB1", "SIG2", "AUTH3", "BARE4", "FRAG5", "TOK6"):
        assert secret not in shown
    assert "http://127.0.0.1:9/nope?subscription-key=***&sig=***&auth=***&***#***'" in shown
    assert redact("Is http://h/v1/ up? yes") == "Is http://h/v1/ up? yes"
