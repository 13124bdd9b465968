"""RFC 9068 JWT access tokens: minted by the token endpoint, read back by introspection."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from ..jose.compact import parse_compact
from ..jose.compact_signing import sign_compact
from ..jose.json_text import dumps
from ..jose.signing_keys import SigningKeys

TYP = "at+jwt"


async def mint(keys: SigningKeys, claims: dict[str, Any], typ: str = TYP) -> str:
    """A JWT of `claims` signed with the active key; `typ` says what it is (an access
    token, or e.g. an ID-JAG, which only its own redemption accepts)."""
    signing = await keys.active()
    header = {"typ": typ, "alg": signing.alg, "kid": signing.kid}
    # The claims are ours and already valid: serialise them straight into a JWS.
    payload = dumps(claims)
    return sign_compact(signing, header, payload)


async def read(keys: SigningKeys, token: str, issuer: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token this bridge issued; None otherwise."""
    try:
        header = parse_compact(token).header
    except (JoseError, ValueError, UnicodeError):
        return None
    if header.get("typ") != TYP or not isinstance(header.get("kid"), str):
        return None
    signing = await keys.verification_key(header["kid"])
    if signing is None or header.get("alg") != signing.alg:
        return None
    try:
        claims = dict(jwt.decode(token, signing.key, algorithms=[signing.alg]).claims)
    except (JoseError, ValueError):
        return None
    exp = claims.get("exp")
    if claims.get("iss") != issuer or not isinstance(exp, int) or exp <= time.time():
        return None
    return claims
