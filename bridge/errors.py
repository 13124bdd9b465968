"""OAuth 2.0 error responses (RFC 6749 §4.1.2.1 and §5.2): the base that every OAuth-speaking
part raises, and the error codes RFC 6749 itself names.

Extensions keep their own codes beside their spec (`rar.errors` for RFC 9396,
`oauth.errors` for DPoP, resource indicators and revocation, `deferral.errors` for DTR).
Nothing here knows an HTTP framework: an endpoint renders an error with `body()`, `status`
and `headers` (`oauth.responses.error_response`). Descriptions are for the client developer:
they name what is wrong with the request, never policy text or secrets.
"""

from __future__ import annotations

from typing import Any


class OAuthError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(
        self,
        description: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.description:
            out["error_description"] = description_text(self.description)
        return out


def description_text(text: str) -> str:
    """RFC 6749 §5.2 allows only printable ASCII without `"` and `\\` in `error_description`;
    descriptions quote client input, so they are made to fit rather than dropped."""
    cleaned = text.replace('"', "'").replace("\\", "/")
    return "".join(ch if " " <= ch <= "~" else "?" for ch in cleaned)


class InvalidRequest(OAuthError):
    """A parameter is missing, repeated, malformed or not allowed here."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed. 401 with a challenge when the client tried HTTP Basic."""

    error = "invalid_client"


class InvalidGrant(OAuthError):
    """The grant (code, refresh token, assertion, deferral code) is invalid, expired,
    revoked, or was issued to another client."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client is not allowed to use this grant type (or response type)."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    """The resource owner or the authorization server denied the request."""

    error = "access_denied"


class ServerError(OAuthError):
    """The bridge could not decide (e.g. the PDP is unreachable): never a token."""

    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
