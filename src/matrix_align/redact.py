"""Secrets never leave the process in a message: one function scrubs every text that is
shown on the terminal, written to a file or put on a page.

Two kinds of secret reach messages: credentials written into a URL (``--base-url
http://user:pass@host/v1``, ``?api_key=...``), which servers and HTTP libraries quote back
in their errors, and API keys, which a backend registers here when it reads one (OpenAI
quotes the first characters of a key it refuses).

Every query value and the fragment of a URL are masked, whatever their names: services
put keys under names no list can know (``sig``, ``subscription-key``, ``auth``, ``code``),
and a base URL's query is never what a reader of a message needs. The names are kept, so
a message still says which parameters the URL had.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://USER[:PASSWORD]@ -- the user part alone can be a token (https://TOKEN@host).
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]+@")
# A URL's query and fragment: from its "?" or "#" to the end of the URL (white space or a
# quote, which is where shlex and error messages end one).
_URL_TAIL = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>?#]*)([?#][^\s'\"<>]*)")
# A query parameter with a secret's name, outside a URL (a path quoted alone, "/v1?key=...").
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|password|secret|sig)=)[^&#\s]+"
)
_KNOWN: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (an API key) in every later message, and its first eight characters,
    which is what some servers quote of a key they refuse."""
    if value and len(value.strip()) >= 6:
        _KNOWN.add(value)
        if len(value) > 8:
            _KNOWN.add(value[:8])


def _mask_tail(tail: str) -> str:
    """A URL's ``?query#fragment`` with every value and the fragment masked."""
    query, hash_sign, fragment = tail.partition("#")
    if len(query) > 1:  # a bare item (no "=") is all value: "?SECRET" shows as "?***"
        parts = (part.partition("=") for part in query[1:].split("&"))
        query = "?" + "&".join(f"{name}={MASK}" if sep else MASK for name, sep, _ in parts)
    return query + (f"#{MASK}" if hash_sign and fragment else hash_sign)


def redact(text: str) -> str:
    """``text`` with URL credentials, URL query values and fragments, and registered keys
    masked."""
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _URL_TAIL.sub(lambda m: m.group(1) + _mask_tail(m.group(2)), text)
    text = _SECRET_QUERY.sub(rf"\1{MASK}", text)
    for secret in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
