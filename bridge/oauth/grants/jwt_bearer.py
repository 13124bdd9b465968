"""RFC 7523 §2.1 JWT bearer grant, including Identity Assertion JWT Authorization Grants
(ID-JAG): a trusted issuer's assertion names the principal; the client acts for it.

An ID-JAG (`typ` `oauth-id-jag+jwt`) is issued to one client: its `client_id` claim must be
the authenticated client. An assertion's `jti` is accepted once. Redeeming an ID-JAG is a
delegation (AuthZEN token exchange binding §5.3): the client redeeming it is the
requesting party, whose own gate the token issuance mapping asks.
"""

from __future__ import annotations

from ...errors import InvalidGrant
from ...jose.trusted_issuers import TrustedIssuers, UntrustedToken
from ...store.contract import ReplayCache
from .base import (
    Delegation,
    Principal,
    PrincipalGrant,
    TokenRequest,
    authentication_of,
    subject_with_actor,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYP = "oauth-id-jag+jwt"


def is_id_jag(header: dict[str, object]) -> bool:
    """`typ` is a media type: compared case-insensitively, `application/` optional (RFC 7515
    §4.1.9), so no spelling of it slips past the checks an ID-JAG needs."""
    typ = header.get("typ")
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ.removeprefix("application/") == ID_JAG_TYP


class JWTBearerGrant(PrincipalGrant):
    grant_type = GRANT_TYPE
    own_parameters = frozenset({"assertion"})

    def __init__(self, issuers: TrustedIssuers, replay: ReplayCache, audiences: set[str]) -> None:
        self._issuers = issuers
        self._replay = replay
        self._audiences = audiences

    async def principal(self, request: TokenRequest) -> Principal:
        assertion = request.form.require("assertion")
        try:
            verified = await self._issuers.verify(assertion, audiences=self._audiences)
        except UntrustedToken as exc:
            raise InvalidGrant(f"assertion is not acceptable: {exc}") from None
        client_id = request.client.client_id
        if is_id_jag(verified.header) and verified.claims.get("client_id") != client_id:
            raise InvalidGrant("the assertion was issued to another client")
        jti = verified.claims.get("jti")
        if isinstance(jti, str):
            namespace = f"assertion:{verified.issuer.issuer}"
            if not await self._replay.use_once(namespace, jti, float(verified.claims["exp"])):
                raise InvalidGrant("the assertion has already been used")
        act = {"sub": client_id}
        return Principal(
            subject=subject_with_actor(verified.issuer.subject_type, verified.sub, act),
            token_sub=verified.sub,
            act=act,
            authentication=authentication_of(verified.claims),
            delegation=(
                Delegation(subject_claims=dict(verified.claims))
                if is_id_jag(verified.header)
                else None
            ),
        )
