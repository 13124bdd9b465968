"""The answers of the stream management API (SSF 1.0 §8.1) and of poll delivery (RFC 8936)
when they refuse: SSF names only the HTTP statuses (each endpoint's table), RFC 8936 §2.4.4
the poll's. The body is `{"error": <code>, "error_description": <text>}`, as OAuth's; a 401
also carries `WWW-Authenticate: Bearer` (RFC 6750 §3).
"""

from __future__ import annotations

from typing import Any


class StreamError(Exception):
    status = 400
    error = "invalid_request"

    def __init__(self, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class BadStreamRequest(StreamError):
    """400: the body cannot be parsed, a Transmitter-Supplied property is wrong, or the
    request is otherwise invalid."""


class ReceiverUnauthorized(StreamError):
    """401: authorization failed or is missing."""

    status = 401
    error = "invalid_token"


class ReceiverForbidden(StreamError):
    """403: the receiver may not do this (create another stream, use this delivery)."""

    status = 403
    error = "forbidden"


class StreamNotFound(StreamError):
    """404: no stream with this `stream_id` for this receiver."""

    status = 404
    error = "not_found"


class StreamConflict(StreamError):
    """409: the receiver has as many streams as it may (SSF §8.1.1.1), or the stream changed
    meanwhile."""

    status = 409
    error = "conflict"


class TooManyRequests(StreamError):
    """429: verification asked for more often than `min_verification_interval`."""

    status = 429
    error = "too_many_requests"
