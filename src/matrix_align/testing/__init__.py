"""Test doubles other code and tests reuse: a loopback OpenAI-compatible server.

Standard library only, so importing it never needs an optional dependency.
"""

from matrix_align.testing.fake_openai_server import (
    FakeOpenAIServer,
    default_responder,
    find_schema,
    minimal_instance,
)

__all__ = ["FakeOpenAIServer", "default_responder", "find_schema", "minimal_instance"]
