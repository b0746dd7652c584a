"""The sweep tests run evaluate folders: the evaluate tests' fixtures (offline, tiny scenes)."""

from tests.evaluate.conftest import offline_hub, tiny_config

__all__ = ["offline_hub", "tiny_config"]
