"""The inspect tests share one process with the rest of the suite: inspect's ``eval()`` sets
the root logger's level and adds its handler there (once per process). Both are put back
when these tests end, so later tests see logging as they would without them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

_LOGGERS = ("", "httpx", "httpx2")


@pytest.fixture(autouse=True, scope="package")
def restore_logging() -> Iterator[None]:
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
        for name in _LOGGERS
    }
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = handlers
