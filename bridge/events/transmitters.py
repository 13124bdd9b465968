"""The transmitters the bridge accepts events from (`[[events.transmitters]]`), and the
complete check of a SET one of them sent, before anything is done with it:

compact JWS (bounded, strict JSON) → `typ` `secevent+jwt` → `iss` names a configured
transmitter → `alg` one it may use → signature with its keys (`jwks` or `jwks_uri`, fetched
again for a `kid` not yet seen) → `aud` the one it must use, `iat` within the window, no
`sub`, no `exp`, exactly one event → an event type it may send (a verification or a
stream-updated event: any transmitter, SSF 1.0 §8.1.4, §8.1.5).

The issuer is read from the unverified payload only to pick the keys; everything is checked
against that transmitter's configuration. Whether the `jti` was seen before is the
receiver's business (`receiving`), across replicas, once all of this passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from joserfc import jws
from joserfc.errors import JoseError

from ..jose.compact import MalformedJWS, parse_compact
from ..jose.jwks import JWKSError, JWKSource
from ..settings import EventsSettings, EventTransmitterPeerSettings
from .event_types import ALWAYS_SENT
from .security_event_token import SecurityEvent, read_event, typed
from .set_errors import (
    AccessDenied,
    AuthenticationFailed,
    InvalidIssuer,
    InvalidKey,
    InvalidRequest,
)

# Where transmitters push (RFC 8935); the default audience of their SETs is its URL.
PUSH_PATH = "/ssf/events"


@dataclass(frozen=True)
class Transmitter:
    settings: EventTransmitterPeerSettings
    audience: str
    keys: JWKSource

    @property
    def name(self) -> str:
        return self.settings.name


class KnownTransmitters:
    def __init__(self, settings: EventsSettings, public_url: str, http: httpx.AsyncClient) -> None:
        default_audience = public_url.rstrip("/") + PUSH_PATH
        self._settings = settings
        self._by_issuer = {
            peer.issuer: Transmitter(
                peer,
                peer.audience or default_audience,
                JWKSource(
                    jwks=peer.jwks,
                    uri=str(peer.jwks_uri) if peer.jwks_uri else None,
                    http=http,
                ),
            )
            for peer in settings.transmitters
        }

    def __bool__(self) -> bool:
        return bool(self._by_issuer)

    def all(self) -> list[Transmitter]:
        return list(self._by_issuer.values())

    async def verify(self, token: str, now: float) -> tuple[Transmitter, SecurityEvent]:
        """The transmitter and the event of `token`; the `SETError` to answer otherwise."""
        token = token.strip()
        try:
            parsed = parse_compact(token)
        except MalformedJWS as exc:
            raise InvalidRequest(f"not a signed SET: {exc}") from None
        if not typed(parsed.header):
            raise InvalidRequest("the SET's typ must be secevent+jwt (RFC 8417 §2.3)")
        claimed = parsed.payload.get("iss")
        transmitter = self._by_issuer.get(claimed) if isinstance(claimed, str) else None
        if transmitter is None:
            raise InvalidIssuer("no transmitter of this issuer is configured")
        alg = parsed.header.get("alg")
        if not isinstance(alg, str) or alg not in transmitter.settings.algorithms:
            raise InvalidKey("the SET is signed with an algorithm this transmitter may not use")
        kid = parsed.header.get("kid")
        try:
            keys = await transmitter.keys.key_set(kid if isinstance(kid, str) else None)
        except JWKSError:
            raise AuthenticationFailed("the transmitter's keys could not be loaded") from None
        try:
            jws.deserialize_compact(token, keys, algorithms=[alg])
        except (JoseError, ValueError):
            raise InvalidKey("the signature does not verify with the transmitter's keys") from None
        event = read_event(
            parsed.payload,  # the strictly parsed payload, now known to be the signed one
            audience=transmitter.audience,
            now=now,
            max_age=self._settings.max_age_seconds,
            leeway=self._settings.leeway_seconds,
        )
        if event.event_type not in (*transmitter.settings.events, *ALWAYS_SENT):
            raise AccessDenied("this transmitter may not send events of this type")
        return transmitter, event
