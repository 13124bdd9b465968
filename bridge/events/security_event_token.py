"""Security Event Tokens (RFC 8417) as SSF 1.0 profiles them (§4): explicitly typed
(`typ: secevent+jwt`), no `sub` and no `exp`, the primary subject in `sub_id`, one event in
`events`; the bridge's own signed with its active signing key (published at `/jwks`).

`read_event` checks the claims of a SET whose signature was already verified; `mint` makes
the bridge's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws

from ..jose.signing_keys import SigningKeys
from .set_errors import InvalidAudience, InvalidRequest

TYP = "secevent+jwt"
# RFC 8417 §2.3 and RFC 8935 §2: how a SET travels in an HTTP body.
MEDIA_TYPE = "application/secevent+jwt"
MAX_JTI = 256


@dataclass(frozen=True)
class SecurityEvent:
    """A received SET's claims, checked: who sent it, which event, about whom."""

    issuer: str
    jti: str
    iat: int
    txn: str | None
    sub_id: dict[str, Any] | None  # the primary subject (or a CAEP event's `subject`)
    event_type: str
    event: dict[str, Any]


def typed(header: dict[str, Any]) -> bool:
    """RFC 8417 §2.3 with RFC 7515 §4.1.9: `secevent+jwt`, or its media type in full."""
    typ = header.get("typ")
    return isinstance(typ, str) and typ.lower() in (TYP, MEDIA_TYPE)


def read_event(
    claims: dict[str, Any], *, audience: str, now: float, max_age: int, leeway: int
) -> SecurityEvent:
    """The event of a verified SET's `claims`, meant for `audience` and issued (`iat`) at most
    `max_age` seconds ago (and at most `leeway` ahead); the `SETError` to answer otherwise."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise InvalidRequest(f"jti must be a string of 1 to {MAX_JTI} characters (RFC 8417 §2.2)")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidRequest("iat must be a NumericDate in whole seconds (RFC 8417 §2.2)")
    if iat > now + leeway:
        raise InvalidRequest("iat is in the future")
    if iat < now - max_age:
        raise InvalidRequest(f"the SET was issued more than {max_age} seconds ago")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in named:
        raise InvalidAudience(f"the SET's aud does not name {audience}")
    if "sub" in claims:
        raise InvalidRequest("an SSF SET has no sub claim (SSF 1.0 §4.1.2)")
    if "exp" in claims:
        raise InvalidRequest("an SSF SET has no exp claim (SSF 1.0 §4.1.6)")
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise InvalidRequest("events must be an object holding exactly one event")
    [(event_type, event)] = events.items()
    if not isinstance(event, dict):
        raise InvalidRequest("the event must be a JSON object")
    sub_id = claims.get("sub_id", event.get("subject"))
    if sub_id is not None and not isinstance(sub_id, dict):
        raise InvalidRequest("sub_id must be a Subject Identifier object (RFC 9493)")
    txn = claims.get("txn")
    if txn is not None and not isinstance(txn, str):
        raise InvalidRequest("txn must be a string")
    return SecurityEvent(str(claims["iss"]), jti, iat, txn, sub_id, event_type, event)


async def mint(keys: SigningKeys, claims: dict[str, Any]) -> str:
    """A SET of `claims`, signed with the bridge's active key."""
    signing = await keys.active()
    header = {"typ": TYP, "alg": signing.alg, "kid": signing.kid}
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    return jws.serialize_compact(header, payload, signing.key, algorithms=[signing.alg])
