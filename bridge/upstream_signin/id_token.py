"""Checking the provider's ID token (OpenID Connect Core 1.0 §3.1.3.7) before anyone is
signed in with it.

The token goes through the bridge's one compact JWS parser (strict base64url, strict bounded
JSON) before anything else reads it; the signature is verified with joserfc against the
provider's published keys, with only the configured asymmetric algorithms; then the claims:
`iss` exactly the provider, `aud` naming the bridge's client (and `azp` the bridge when there
are several audiences, or whenever present), `exp` and `iat` with a small leeway, an `iat`
not older than allowed, `nbf` if present, the `nonce` this sign-in sent, and a `sub`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from ..jose.compact import MalformedJWS, parse_compact
from .errors import IdTokenInvalid
from .provider_keys import ProviderKeys

# An ID token is a few kB at most; the parser's own bound is the bridge's usual one.
MAX_ID_TOKEN_LENGTH = 16_384


@dataclass(frozen=True, slots=True)
class Expected:
    """What this sign-in's ID token must say."""

    issuer: str
    client_id: str
    nonce: str
    algorithms: frozenset[str]
    leeway_seconds: int
    max_age_seconds: int
    now: float


async def verify_id_token(
    token: str, *, keys: ProviderKeys, jwks_uri: str, expected: Expected
) -> dict[str, Any]:
    """The ID token's claims once every check passed; `IdTokenInvalid` naming the first that
    failed otherwise."""
    try:
        parsed = parse_compact(token, max_length=MAX_ID_TOKEN_LENGTH)
    except MalformedJWS as exc:
        raise IdTokenInvalid("malformed", f"not a signed JWT: {exc}") from None
    header = parsed.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in expected.algorithms:
        shown = repr(alg[:20]) if isinstance(alg, str) else "no algorithm"
        raise IdTokenInvalid(
            "algorithm",
            f"signed with {shown}; accepted: {', '.join(sorted(expected.algorithms))}",
        )
    if "crit" in header:
        # No extension is understood here, so none may be required (RFC 7515 §4.1.11).
        raise IdTokenInvalid("malformed", "the header names critical extensions")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenInvalid("malformed", "the header's kid is not a string")
    key_set = await keys.key_set(jwks_uri, kid)
    if kid is not None and not any(key.kid == kid for key in key_set.keys):
        raise IdTokenInvalid("unknown_key", "signed with a key the provider does not publish")
    if kid is None and len(key_set.keys) > 1:
        # Core §10.1: with several keys published, the token must say which one signed it.
        raise IdTokenInvalid("unknown_key", "names no key (kid), and the provider has several")
    try:
        jws.deserialize_compact(token, key_set, algorithms=[alg])
    except (JoseError, ValueError):
        raise IdTokenInvalid("signature", "the signature does not verify") from None
    claims = parsed.payload  # the strictly parsed payload, now known to be the signed one
    check_claims(claims, expected)
    return claims


def check_claims(claims: dict[str, Any], expected: Expected) -> None:
    """The claim checks of Core §3.1.3.7, in its order."""
    if claims.get("iss") != expected.issuer:
        raise IdTokenInvalid("issuer", f"it was not issued by {expected.issuer}")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise IdTokenInvalid("audience", "it has no usable aud claim")
    if expected.client_id not in audiences:
        raise IdTokenInvalid("audience", f"it is not meant for the client {expected.client_id}")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise IdTokenInvalid("azp", "it names several audiences but no authorized party (azp)")
    if azp is not None and azp != expected.client_id:
        raise IdTokenInvalid("azp", f"its authorized party (azp) is not {expected.client_id}")
    now, leeway = expected.now, expected.leeway_seconds
    exp = _time(claims, "exp", required=True)
    if exp is not None and now > exp + leeway:
        raise IdTokenInvalid("expired", "it has expired")
    iat = _time(claims, "iat", required=True)
    if iat is not None and iat > now + leeway:
        raise IdTokenInvalid("iat", "it was issued in the future (check the clocks)")
    if iat is not None and now - iat > expected.max_age_seconds + leeway:
        raise IdTokenInvalid("iat", "it was issued too long ago")
    nbf = _time(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise IdTokenInvalid("nbf", "it is not valid yet (nbf)")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode("utf-8"), expected.nonce.encode("utf-8")
    ):
        # Another sign-in's token, or a replayed one.
        raise IdTokenInvalid("nonce", "its nonce is not the one this sign-in sent")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise IdTokenInvalid("subject", "its sub is not a string of 1 to 255 characters")


def _time(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise IdTokenInvalid(name, f"it has no {name} claim")
        return None
    # JSON numbers only: Python's bool is an int, and true is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdTokenInvalid(name, f"its {name} is not a number")
    return float(value)
