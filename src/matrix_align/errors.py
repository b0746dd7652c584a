"""User-facing errors: each names what is wrong and how to fix it.

The CLI prints these as one clear message (no traceback) and exits non-zero. Anything else
that escapes is a bug in matrix-align, not a user mistake.
"""


class MatrixAlignError(Exception):
    """A problem the user can fix (bad option, unreachable server, missing file...)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class BackendUnavailable(MatrixAlignError):
    """The model backend cannot be used at all (server unreachable, model file missing)."""


class TransientBackendError(Exception):
    """A failure worth retrying: timeout, rate limit (429), server error (5xx), lost connection."""


class PermanentBackendError(Exception):
    """A request the backend rejected for good (4xx other than 429): retrying will not help."""
