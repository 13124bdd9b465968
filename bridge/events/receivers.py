"""Who is calling the stream management API and poll delivery: a configured receiver
(`[[events.transmitter.receivers]]`), authenticated with a bearer JWT (RFC 6750) of its
issuer (one of `oauth.trusted_issuers`) whose `sub` is its `subject` and whose `aud` is the
management API's own (`events.transmitter.audience`, default `<server.public_url>/ssf`).

That audience is reserved (`Shared` hands it to the trusted issuers): a token meant for it is
never accepted as a subject token or an assertion, nor a subject token here. SSF 1.0 §7.1.1
leaves the scheme to the parties; the transmitter metadata names it (`authorization_schemes`:
RFC 6750).
"""

from __future__ import annotations

from starlette.requests import Request

from ..jose.trusted_issuers import TrustedIssuers, UntrustedToken
from ..settings import EventReceiverPeerSettings, Settings
from .stream_errors import ReceiverForbidden, ReceiverUnauthorized

MANAGEMENT_PATH = "/ssf"


def management_audience(settings: Settings) -> str:
    """The `aud` of receivers' bearer tokens."""
    configured = settings.events.transmitter.audience
    return configured or settings.server.public_url.rstrip("/") + MANAGEMENT_PATH


class ReceiverAuthenticator:
    def __init__(
        self,
        issuers: TrustedIssuers,
        receivers: list[EventReceiverPeerSettings],
        audience: str,
        realm: str,
        *,
        subject_audiences: frozenset[str] = frozenset(),
    ) -> None:
        self._issuers = issuers
        self._receivers = {(r.issuer, r.subject): r for r in receivers}
        self._audience = audience
        self._realm = realm
        self._subject_audiences = subject_audiences

    async def identify(self, request: Request) -> EventReceiverPeerSettings:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._refuse(None, "a receiver's bearer token is required")
        try:
            verified = await self._issuers.verify(
                token.strip(), audiences={self._audience}, refused_audiences=self._subject_audiences
            )
        except UntrustedToken as exc:
            raise self._refuse("invalid_token", f"the token is refused: {exc}") from None
        receiver = self._receivers.get((verified.issuer.issuer, verified.sub))
        if receiver is None:
            raise ReceiverForbidden("the token's subject is not a receiver of this transmitter")
        return receiver

    def _refuse(self, error: str | None, description: str) -> ReceiverUnauthorized:
        challenge = f'Bearer realm="{self._realm}"'
        if error:
            challenge += f', error="{error}"'
        return ReceiverUnauthorized(description, headers={"WWW-Authenticate": challenge})
