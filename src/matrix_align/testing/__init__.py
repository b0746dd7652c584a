"""Test doubles that tests, benchmarks and other developers reuse.

``FakeOpenAIServer`` is a loopback OpenAI-compatible server (standard library only). Names
are imported lazily so that ``python -m matrix_align.testing.fake_openai_server`` does not
import the module twice (which makes Python warn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matrix_align.testing.fake_openai_server import (
        FakeOpenAIServer,
        default_responder,
        find_schema,
        minimal_instance,
    )

__all__ = ["FakeOpenAIServer", "default_responder", "find_schema", "minimal_instance"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from matrix_align.testing import fake_openai_server

        return getattr(fake_openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
