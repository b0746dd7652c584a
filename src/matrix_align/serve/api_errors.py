"""Errors as OpenAI's API writes them, so every OpenAI client shows them as it shows
OpenAI's own: a status code and ``{"error": {"message", "type", "param", "code"}}``.

The official ``openai`` client turns the status into its exception class (400
``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 429
``RateLimitError``, 5xx ``InternalServerError``) and keeps the body in ``exc.body``.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A request answered with an error instead of a completion."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def internal_error() -> APIError:
    """A bug: the client is told only that it happened; the traceback goes to the log."""
    return APIError(
        500,
        "Internal error in matrix-align serve (logged on the server).",
        type="server_error",
        code="internal_error",
    )


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)
