"""When a server says to come back: the ``Retry-After`` family of response headers.

Hosted APIs tell a rate-limited client how long to wait in one of three forms, and a client
that ignores them retries too early and is refused again:

- ``retry-after-ms: 1500`` (OpenAI, Azure OpenAI): milliseconds, fractional allowed;
- ``Retry-After: 30`` (RFC 9110): whole or decimal seconds;
- ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` (RFC 9110): an HTTP-date.

The millisecond form wins when both are sent, since it is the more precise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def retry_after_s(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked the client to wait, or None when it said nothing usable.

    ``headers`` is looked up case-insensitively when it is an ``httpx.Headers``; a plain
    dict should use lower-case names. ``now`` (seconds since the epoch) turns an HTTP-date
    into a wait; a date in the past is a wait of 0.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        value = _seconds(millis.strip())
        if value is not None:
            return value / 1000.0
    header = headers.get("retry-after")
    if header is None:
        return None
    header = header.strip()
    value = _seconds(header)
    if value is not None:
        return value
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are always GMT; "-0000" or no zone parse naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())
