"""Diagnostic logging for ``--verbose`` / ``--log-level``: off (warnings only) by default,
on stderr, and scrubbed of secrets, because the HTTP libraries log every request URL and a
``--base-url`` may carry credentials."""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


class _Redacting(logging.Filter):
    """Masks URL credentials and API keys in every record before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        from matrix_align.redact import redact

        record.msg = redact(record.getMessage())
        record.args = None
        return True


def setup_logging(level: str) -> None:
    """Send records of ``level`` and above, from matrix-align and the libraries it drives
    (httpx, openai, transformers...), to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redacting())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
