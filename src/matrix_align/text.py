"""Text from outside (input files, the command line, model replies) made safe to store and to
show.

- Python strings can hold what UTF-8 cannot encode: a lone surrogate (``"\\ud800"`` is
  valid JSON) or, on the command line, a byte that was not UTF-8 (decoded as a surrogate
  escape). Such text fails later, at the first write or request; ``require_unicode`` turns it
  into one clear error where it enters.
- Model replies are untrusted and may carry terminal control sequences: a clipboard write
  (OSC 52), a window title (OSC 0), a screen clear (CSI 2J), a carriage return that
  overwrites a line, or bidirectional overrides that reorder what is read. ``printable``
  shows each such character as a visible escape instead.
"""

from __future__ import annotations

import re

from matrix_align.errors import MatrixAlignError

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings,
# overrides and isolates.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so printing it
    on a terminal can only ever show text."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def require_unicode(text: str, what: str) -> str:
    """``text`` unchanged when UTF-8 can encode it, else one clear error naming ``what``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start]
        raise MatrixAlignError(
            f"{what} holds {bad!r} at character {exc.start + 1}, which is not valid Unicode "
            "(a lone surrogate, or a byte that is not UTF-8).",
            hint="fix or remove that character (files and arguments must be UTF-8 text)",
        ) from None
    return text
