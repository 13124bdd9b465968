"""The error RFC 9396 names for `authorization_details`."""

from __future__ import annotations

from ..errors import OAuthError


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: an `authorization_details` entry is unknown, malformed or not allowed."""

    error = "invalid_authorization_details"
