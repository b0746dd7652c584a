"""Secrets never leave the process in a message: one function scrubs every text that is
shown on the terminal, written to a file or put on a page.

Two kinds of secret reach messages: credentials written into a URL (``--base-url
http://user:pass@host/v1``, ``?api_key=...``), which servers and HTTP libraries quote back
in their errors, and API keys, which a backend registers here when it reads one (OpenAI
quotes the first characters of a key it refuses).
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://USER[:PASSWORD]@ -- the user part alone can be a token (https://TOKEN@host).
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]+@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|password|secret)=)[^&#\s]+"
)
_KNOWN: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (an API key) in every later message, and its first eight characters,
    which is what some servers quote of a key they refuse."""
    if value and len(value.strip()) >= 6:
        _KNOWN.add(value)
        if len(value) > 8:
            _KNOWN.add(value[:8])


def redact(text: str) -> str:
    """``text`` with URL credentials, secret query parameters and registered keys masked."""
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _SECRET_QUERY.sub(rf"\1{MASK}", text)
    for secret in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
