"""The systems tests use the evaluate tests' scripted models and tiny scene settings."""

from tests.evaluate.conftest import (  # noqa: F401 - fixtures and helpers shared as they are
    answering_model,
    judge_model,
    offline_hub,
    tiny_config,
)
