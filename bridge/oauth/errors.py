"""OAuth 2.0 error responses (RFC 6749 §5.2 and the extensions the bridge speaks), one class
per protocol error code.

Every refusal at an OAuth endpoint raises one of these; the endpoint turns it into the JSON
error body with `Cache-Control: no-store`. Descriptions are for the client developer: they
name what is wrong with the request, never policy text or secrets.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


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

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **self.headers}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def description_text(text: str) -> str:
    """RFC 6749 §5.2 allows only printable ASCII without `"` and `\\` in `error_description`;
    descriptions quote client input, so they are made to fit rather than dropped."""
    cleaned = text.replace('"', "'").replace("\\", "/")
    return "".join(ch if " " <= ch <= "~" else "?" for ch in cleaned)


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed. 401 with a challenge when the client tried HTTP Basic."""

    error = "invalid_client"


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707: the `resource` indicator is not acceptable."""

    error = "invalid_target"


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: an `authorization_details` entry is unknown, malformed or not allowed."""

    error = "invalid_authorization_details"


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5: the DPoP proof is missing where required, malformed or invalid."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: the server wants a fresh nonce in the proof (sent in `DPoP-Nonce`)."""

    error = "use_dpop_nonce"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: revocation of this token type is not supported."""

    error = "unsupported_token_type"


class AccessDenied(OAuthError):
    """DTR: the deferred request was denied, cancelled, or no longer holds."""

    error = "access_denied"


class ExpiredToken(OAuthError):
    """DTR: the deferral code's lifetime ended while the request was pending."""

    error = "expired_token"


class SlowDown(OAuthError):
    """DTR: polled faster than the interval; the client adds 5 s."""

    error = "slow_down"


class AuthorizationPending(OAuthError):
    """DTR: not decided yet. The first one (the deferred response) carries the code."""

    error = "authorization_pending"

    def __init__(self, extra: dict[str, object] | None = None) -> None:
        super().__init__(None)
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {**super().body(), **self.extra}


class ServerError(OAuthError):
    """The bridge could not decide (e.g. the PDP is unreachable): never a token."""

    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
