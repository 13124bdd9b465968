"""Errors of the authorization endpoint and of pushed authorization requests.

Two kinds (RFC 6749 §4.1.2.1): when the client or its redirect URI cannot be trusted, the
user sees an error page and is never sent anywhere (an open redirect otherwise); every other
error goes back to the client's redirect URI, with `state` and `iss`.
"""

from __future__ import annotations

from ..errors import OAuthError


class NotRedirectable(Exception):
    """RFC 6749 §4.1.2.1: "If the request fails due to a missing, invalid, or mismatching
    redirection URI, or if the client identifier is missing or invalid, the authorization
    server SHOULD inform the resource owner of the error and MUST NOT automatically
    redirect the user-agent to the invalid redirection URI." Shown as a page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RequestNotSupported(OAuthError):
    """RFC 9101 §7 (JWT-Secured Authorization Request): "The authorization server does not
    support use of the request parameter." Refused rather than ignored: a client that
    signed its request must not believe the signed version was used."""

    error = "request_not_supported"


class InvalidRequestURI(OAuthError):
    """RFC 9101 §7 (used by RFC 9126 §4): "The request_uri in the authorization request
    returns an error or contains invalid data." Pushed request URIs are single use and
    short lived; an expired or used one is this error."""

    error = "invalid_request_uri"
