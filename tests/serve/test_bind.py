"""The listening socket: a port in use, or a host that cannot be listened on, is one clear
error whose hint names the option to change."""

from __future__ import annotations

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.serve.server import bind


def test_a_port_in_use_gets_a_hint_about_the_port() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(MatrixAlignError) as caught:
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    assert "--port" in caught.value.hint


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_an_unusable_host_gets_a_hint_about_the_host_not_the_port(host: str) -> None:
    # 192.0.2.1 is reserved for documentation (RFC 5737): no machine's own address.
    with pytest.raises(MatrixAlignError) as caught:
        bind(host, 0)
    assert f"Cannot listen on {host}:0" in caught.value.message
    assert "--host" in caught.value.hint
    assert "--port" not in caught.value.hint
