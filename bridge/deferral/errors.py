"""The token endpoint errors of a Deferred Token Response (DTR §6.4, §6.5; the codes are
RFC 8628's, which DTR reuses for polling)."""

from __future__ import annotations

from typing import Any

from ..errors import OAuthError


class AuthorizationPending(OAuthError):
    """Not decided yet. The first one (the deferred response) carries the code, its
    lifetime and the polling interval; later ones carry nothing more."""

    error = "authorization_pending"

    def __init__(self, extra: dict[str, object] | None = None) -> None:
        super().__init__(None)
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {**super().body(), **self.extra}


class SlowDown(OAuthError):
    """Polled faster than the interval: the client adds 5 seconds for the rest of the code's
    life."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """The deferral code's lifetime ended while the request was pending."""

    error = "expired_token"
