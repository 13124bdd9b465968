"""Errors of the AuthZEN layer, named after what went wrong in the protocol's words.

`AuthZENError` is what an endpoint answers with (an HTTP status and a message); the PDP
errors are what a PEP inside the bridge sees when a decision could not be had. A PDP error
never turns into a permit: callers treat it as "no decision".
"""

from __future__ import annotations


class AuthZENError(Exception):
    """A request the endpoint refuses; rendered as `{"error": {"status", "message"}}`."""

    status = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(AuthZENError):
    status = 400


class Unauthorized(AuthZENError):
    status = 401


class Forbidden(AuthZENError):
    status = 403


class NotFound(AuthZENError):
    status = 404


class MethodNotAllowed(AuthZENError):
    status = 405


class PayloadTooLarge(AuthZENError):
    status = 413


class UnsupportedMediaType(AuthZENError):
    status = 415


class PDPError(Exception):
    """No decision could be had from a PDP. Never to be read as a permit."""


class PDPUnavailable(PDPError):
    """The PDP could not be reached, or kept failing at the transport level."""


class PDPProtocolError(PDPError):
    """The PDP answered, but not with what the AuthZEN API defines."""


class PDPRequestRejected(PDPError):
    """The PDP refused the request itself (4xx): retrying the same request will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class EngineError(PDPError):
    """The embedded engine could not decide (Cedar returned no decision)."""
