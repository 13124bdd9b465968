"""JWTs from other issuers the bridge trusts: subject and actor tokens (RFC 8693) and
authorization grant assertions (RFC 7523, ID-JAG).

The issuer is read from the unverified token only to pick its configuration and keys; the
signature, `iss`, `aud` and lifetime are then checked against that configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError

from ..settings import TrustedIssuerSettings
from .compact import MalformedJWS, parse_compact
from .jwks import JWKSError, JWKSource

LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class VerifiedToken:
    issuer: TrustedIssuerSettings
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])


class UntrustedToken(Exception):
    """The token is not a valid JWT from a trusted issuer (the message says what failed)."""


class TrustedIssuers:
    def __init__(
        self,
        issuers: list[TrustedIssuerSettings],
        default_audience: str,
        http: httpx.AsyncClient,
        *,
        reserved_audiences: frozenset[str] = frozenset(),
    ) -> None:
        """`reserved_audiences` belong to another use of these issuers' tokens (approver
        tokens): a token naming one of them is refused unless asked for by that use."""
        self._issuers = {i.issuer: i for i in issuers}
        self._default_audience = default_audience
        self._reserved = reserved_audiences
        self._keys = {
            i.issuer: JWKSource(jwks=i.jwks, uri=str(i.jwks_uri) if i.jwks_uri else None, http=http)
            for i in issuers
        }

    async def verify(
        self,
        token: str,
        *,
        audiences: set[str] | None = None,
        refused_audiences: set[str] | frozenset[str] | None = None,
    ) -> VerifiedToken:
        """Check `token`; `audiences` are the acceptable `aud` values (default: the issuer's
        configured audience, else the bridge's issuer). A token that also names one of
        `refused_audiences` (default: the reserved ones) is refused: one credential, one
        purpose."""
        try:
            parsed = parse_compact(token)
        except MalformedJWS as exc:
            raise UntrustedToken(f"not a signed JWT: {exc}") from None
        header = parsed.header
        claimed = parsed.payload.get("iss")
        issuer = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if issuer is None:
            raise UntrustedToken("not issued by a trusted issuer")
        try:
            keys = await self._keys[issuer.issuer].key_set(header.get("kid"))
            claims = dict(jwt.decode(token, keys, algorithms=issuer.algorithms).claims)
        except JWKSError:
            raise UntrustedToken("the issuer's keys could not be loaded") from None
        except (JoseError, ValueError):
            raise UntrustedToken("the signature does not verify") from None
        accepted = audiences or {issuer.audience or self._default_audience}
        try:
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": issuer.issuer},
                sub={"essential": True},
                exp={"essential": True},
                aud={"essential": True, "values": sorted(accepted)},
            ).validate(claims)
        except JoseError as exc:
            raise UntrustedToken(_claim_problem(exc, accepted)) from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UntrustedToken("sub must be a non-empty string")
        refused = self._reserved if refused_audiences is None else refused_audiences
        aud = claims.get("aud")
        named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        if named & (refused - accepted):
            raise UntrustedToken("the token's audience is meant for another use")
        return VerifiedToken(issuer, header, claims)


def _claim_problem(error: JoseError, accepted: set[str]) -> str:
    """Which check failed, in words a caller can act on (never the token's contents)."""
    claim = getattr(error, "claim", None)
    if error.error == "expired_token":
        return "the token has expired"
    if error.error == "missing_claim":
        return f"the token has no {claim} claim"
    if claim == "aud":
        return "the token's audience is not " + " or ".join(sorted(accepted))
    if claim == "iss":
        return "the token's issuer does not match its keys"
    if claim in ("nbf", "iat"):
        return f"the token is not valid yet ({claim})"
    return f"the token's {claim or 'claims'} did not pass the checks"
