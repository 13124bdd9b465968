"""RFC 8693 token exchange: a token for the subject of a trusted issuer's JWT.

The principal is the `subject_token`'s subject; the actor is the `actor_token`'s subject when
one is sent, else the client (AROP §2). The actor becomes `subject.properties.act` for the PDP
and the token's `act` claim, nesting an `act` the actor token itself carried.

What the AuthZEN token exchange binding asks of the PDP besides rides along as the
principal's `delegation`: the requesting party (the actor token's, else the client), the
token types, the subject token's validated claims and its end, and the RFC 8693
`audience` values. With `requested_token_type` `...:id-jag` the token issued is an Identity
Assertion JWT Authorization Grant for the authorization server named by `audience`.
"""

from __future__ import annotations

from typing import Any

from ...authzen.models import Subject
from ...errors import InvalidGrant, InvalidRequest
from ...jose.trusted_issuers import TrustedIssuers, UntrustedToken, VerifiedToken
from .base import (
    Delegation,
    Principal,
    PrincipalGrant,
    TokenRequest,
    authentication_of,
    subject_with_actor,
)
from .jwt_bearer import is_id_jag

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPES = frozenset(
    {
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:ietf:params:oauth:token-type:access_token",
        "urn:ietf:params:oauth:token-type:id_token",
    }
)
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ISSUABLE = frozenset({ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt", ID_JAG_TOKEN_TYPE})


class TokenExchangeGrant(PrincipalGrant):
    grant_type = GRANT_TYPE
    own_parameters = frozenset(
        {
            "subject_token",
            "subject_token_type",
            "actor_token",
            "actor_token_type",
            "requested_token_type",
            "audience",
        }
    )

    def __init__(self, issuers: TrustedIssuers) -> None:
        self._issuers = issuers

    async def principal(self, request: TokenRequest) -> Principal:
        form = request.form
        requested = form.get("requested_token_type")
        if requested is not None and requested not in ISSUABLE:
            raise InvalidRequest(f"requested_token_type {requested} cannot be issued")
        subject = await self._token(form.require("subject_token"), form.get("subject_token_type"))
        actor_token = form.get("actor_token")
        if actor_token is None and form.get("actor_token_type") is not None:
            raise InvalidRequest("actor_token_type without actor_token")
        audience = tuple(dict.fromkeys(form.all("audience")))
        if requested == ID_JAG_TOKEN_TYPE and len(audience) != 1:
            # An ID-JAG is for one authorization server, named by `audience`.
            raise InvalidRequest("an ID-JAG needs exactly one audience: its authorization server")
        requesting_party = None
        if actor_token is not None:
            actor = await self._token(actor_token, form.get("actor_token_type"), "actor_token")
            act: dict[str, Any] = {"sub": actor.sub, "iss": actor.issuer.issuer}
            if isinstance(actor.claims.get("act"), dict):
                act["act"] = actor.claims["act"]
            requesting_party = Subject(type=actor.issuer.subject_type, id=actor.sub)
        else:
            act = {"sub": request.client.client_id}
        exp = subject.claims.get("exp")
        return Principal(
            subject=subject_with_actor(subject.issuer.subject_type, subject.sub, act),
            token_sub=subject.sub,
            act=act,
            authentication=authentication_of(subject.claims),
            delegation=Delegation(
                requesting_party=requesting_party,
                subject_token_type=form.get("subject_token_type"),
                actor_token_type=form.get("actor_token_type"),
                subject_claims=dict(subject.claims),
                requested_token_type=requested,
                audience=audience,
                expires_at=float(exp) if isinstance(exp, int | float) else None,
            ),
        )

    async def _token(
        self, token: str, token_type: str | None, name: str = "subject_token"
    ) -> VerifiedToken:
        if token_type is None:
            raise InvalidRequest(f"{name}_type is required")
        if token_type not in JWT_TOKEN_TYPES:
            raise InvalidRequest(f"{name}_type {token_type} is not supported")
        try:
            verified = await self._issuers.verify(token)
        except UntrustedToken as exc:
            raise InvalidGrant(f"{name} is not acceptable: {exc}") from None
        if is_id_jag(verified.header):
            # An ID-JAG is issued to one client and redeemed once, with the jwt-bearer grant.
            raise InvalidGrant(f"{name} is an ID-JAG; redeem it with the jwt-bearer grant")
        return verified
