"""The research tests run evaluate folders: the evaluate tests' offline fixture."""

from tests.evaluate.conftest import offline_hub

__all__ = ["offline_hub"]
