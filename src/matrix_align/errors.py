"""User-facing errors: each names what is wrong and how to fix it.

The CLI prints these as one clear message (no traceback) and exits non-zero. Anything else
that escapes is a bug in matrix-align, not a user mistake.

Exit codes tell a script what happened without parsing the output: a run that produced
everything, some of it, or nothing at all, and a command that could not start.
"""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_FAILED = 1  # the run started but produced nothing usable (every item failed, or aborted)
EXIT_USAGE = 2  # bad input, options or setup: nothing was run
EXIT_PARTIAL = 3  # the run finished, but some items failed (a re-run retries them)
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 the run failed (every item failed, or it stopped early); "
    "2 bad input or setup (nothing was run); 3 partial success (some items failed: rerun the "
    "same command to retry them); 130 interrupted."
)


class MatrixAlignError(Exception):
    """A problem the user can fix (bad option, unreachable server, missing file...)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


def check_known(names: Iterable[str], known: Iterable[str], what: str) -> None:
    """Every one of ``names`` is one of ``known``, else one error naming the unknown ones and
    listing the choices (``what``: the kind of name, e.g. ``metric``)."""
    choices = list(known)
    unknown = [n for n in names if n not in choices]
    if unknown:
        raise MatrixAlignError(
            f"Unknown {what}{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.",
            hint=f"choose from: {', '.join(choices)}",
        )


def build_checked(
    make: Callable[..., T], values: dict[str, Any], what: str, hint: str | None = None
) -> T:
    """``make(**values)`` without the values that are None (not given), its validation
    errors turned into one error: ``Invalid {what}: loc: msg; loc: msg`` (pydantic's
    ``ValidationError``; others propagate)."""
    from pydantic import ValidationError

    try:
        return make(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise MatrixAlignError(f"Invalid {what}: {problems(exc)}", hint=hint) from None


def problems(error: Any) -> str:
    """A pydantic ``ValidationError`` in one line: ``loc: msg; loc: msg`` (the first five)."""
    shown = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors()]
    more = f"; and {len(shown) - 5} more" if len(shown) > 5 else ""
    return "; ".join(shown[:5]) + more


class RunFailed(MatrixAlignError):
    """The run started but produced nothing usable: every item failed, or it stopped early."""

    exit_code = EXIT_FAILED


class BackendUnavailable(MatrixAlignError):
    """The model backend cannot be used at all (server unreachable, model file missing)."""


class TransientBackendError(Exception):
    """A failure worth retrying: timeout, rate limit (429), server error (5xx), lost connection."""


class BackendUnreachable(TransientBackendError):
    """No answer at all (the connection failed or timed out): the server is down, restarting
    or overloaded, as opposed to one that answered with an error. ``serve`` tells its
    clients 503 for this and 502 for a bad answer."""


class PermanentBackendError(Exception):
    """A request the backend rejected for good (4xx other than 429): retrying will not help."""
