"""Minting what the token endpoint answers with: the RFC 9068 access token, the refresh
token when the client may have one, and the RFC 6749 §5.1 response (with RFC 9396 §7
`authorization_details`); or, for a token exchange asking for one, an Identity Assertion
JWT Authorization Grant (ID-JAG) for another authorization server.

The token carries exactly what was requested and permitted: never more. Under the token
issuance mapping its `TokenShape` says the rest: the audience that survived, the lifetime
ceiling (the PDP's, the subject token's end), the PDP's claims and the `jti` it was told.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..authzen.models import Decision, EvaluationRequest
from ..errors import AccessDenied, InvalidGrant
from ..jose.signing_keys import SigningKeys
from ..randomness import token_urlsafe
from ..settings import Settings
from ..store.contract import RefreshTokenRecord, RefreshTokenStore
from .access_tokens import mint
from .clients import Client
from .dpop import DPoPProof
from .grants.base import Principal
from .grants.client_credentials import GRANT_TYPE as CLIENT_CREDENTIALS
from .grants.jwt_bearer import ID_JAG_TYP
from .grants.refresh_token import refresh_token_hash
from .grants.token_exchange import ACCESS_TOKEN_TYPE, ID_JAG_TOKEN_TYPE
from .grants.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from .issuance_shaping import RESERVED_CLAIMS, TokenShape, UnusableIssuance, redeemed_shape


class IssuerStore(RefreshTokenStore, Protocol):
    async def approval_tie_token(
        self, approval_ids: Sequence[str], jti: str, expires_at: float
    ) -> bool: ...


class Issuer:
    def __init__(self, settings: Settings, keys: SigningKeys, store: IssuerStore) -> None:
        self._settings = settings
        self._keys = keys
        self._store = store

    async def issue(
        self,
        *,
        grant_type: str,
        client: Client,
        principal: Principal,
        details: list[dict[str, Any]],
        scope: list[str],
        resource: list[str],
        proof: DPoPProof | None,
        not_after: float | None = None,
        approvals: Sequence[str] = (),
        shape: TokenShape | None = None,
        authorization_claims: Mapping[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """`not_after` caps the token (an approval's `approved_until`); such a token gets no
        refresh token, since the approval bounds the whole credential (AROP §5).
        `approvals`: the ids of the bridge's own approvals the token is issued under; the
        token is tied to them, so that revoking one revokes it. `shape`: what the token
        issuance mapping decided beyond the access itself; a token bounded by its subject
        token's end gets no refresh token either (binding §10.2). `authorization_claims`:
        the claims resource searches rendered (`authorization_claims`), for an access
        token."""
        now = int(time.time())
        lifetime = (
            client.token_lifetime_seconds or self._settings.oauth.access_token_lifetime_seconds
        )
        if shape is not None and shape.token_lifetime is not None:
            lifetime = min(lifetime, shape.token_lifetime)  # a ceiling, never a floor (§6.4.2)
        if shape is not None and shape.expires_at is not None:
            lifetime = min(lifetime, int(shape.expires_at) - now)
            if lifetime <= 0:
                raise InvalidGrant("the subject token has expired")
        if not_after is not None:
            lifetime = min(lifetime, int(not_after) - now)
            if lifetime <= 0:
                raise AccessDenied("the approval has ended")
        if shape is not None and shape.token_type == "id_jag":
            # Only the token issuance mapping issues one (the access request mapping
            # refuses to plan it), so an ID-JAG always comes with its shape.
            return await self._id_jag(
                client, principal, details, scope, resource, proof, now, lifetime, shape
            )
        bounded = not_after is not None or (shape is not None and shape.expires_at is not None)
        # Rotation first: of two concurrent refreshes with one token, only one gets a token.
        refresh_token = (
            None
            if bounded
            else await self._refresh_token(
                grant_type, client, principal, details, scope, resource, proof, now
            )
        )
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": principal.token_sub,
            "aud": self.audience_of(resource, details, shape),
            "client_id": client.client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": (shape.jti if shape is not None else None) or token_urlsafe(16),
        }
        if details:
            claims["authorization_details"] = details
        if scope:
            claims["scope"] = " ".join(scope)
        if principal.act is not None:
            claims["act"] = principal.act
        if proof is not None:
            claims["cnf"] = {"jkt": proof.jkt}
        # RFC 9068 §2.2.1, RFC 9470 §6.1: how the person authenticated, for a resource
        # server that asks for a stronger authentication.
        claims.update(principal.authentication or {})
        claims.update(authorization_claims or {})
        claims.update(_pdp_claims(claims, shape))
        access_token = await mint(self._keys, claims)
        if approvals and not await self._store.approval_tie_token(
            approvals, claims["jti"], claims["exp"]
        ):
            raise AccessDenied("the approval was revoked")
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "DPoP" if proof is not None else "Bearer",
            "expires_in": lifetime,
        }
        if grant_type == TOKEN_EXCHANGE:
            body["issued_token_type"] = ACCESS_TOKEN_TYPE
        if details:
            body["authorization_details"] = details
        if scope:
            body["scope"] = " ".join(scope)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    def audience_of(
        self, resource: list[str], details: list[dict[str, Any]], shape: TokenShape | None
    ) -> list[str]:
        """The token's `aud`: the targets the token issuance mapping kept, else
        `audience`'s."""
        if shape is not None:
            return list(shape.audience)
        return audience(resource, details, self._settings.issuer)

    def redeemed_shape(
        self,
        evaluations: Sequence[EvaluationRequest],
        decisions: Sequence[Decision],
        *,
        scope: Sequence[str],
        details: Sequence[dict[str, Any]],
    ) -> TokenShape | None:
        """The shape of a token redeemed from a deferral, read from its evaluations decided
        again (`issuance_shaping.redeemed_shape`): None for the access request mapping's
        evaluations; `NotAsApproved` when the decisions would narrow the request."""
        return redeemed_shape(
            evaluations,
            decisions,
            scope=scope,
            details=details,
            allowed_claims=frozenset(self._settings.pdp.token_claims),
        )

    async def _id_jag(
        self,
        client: Client,
        principal: Principal,
        details: list[dict[str, Any]],
        scope: list[str],
        resource: list[str],
        proof: DPoPProof | None,
        now: int,
        lifetime: int,
        shape: TokenShape,
    ) -> dict[str, Any]:
        """An ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant): for the one
        authorization server `audience` named, to be redeemed there by this client with the
        jwt-bearer grant; never a refresh token (it is a grant, not a credential)."""
        aud = list(shape.audience)
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": principal.token_sub,
            "aud": aud[0] if len(aud) == 1 else aud,
            "client_id": client.client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": shape.jti or token_urlsafe(16),
        }
        if resource:
            claims["resource"] = resource[0] if len(resource) == 1 else resource
        if scope:
            claims["scope"] = " ".join(scope)
        if details:
            claims["authorization_details"] = details
        if proof is not None:
            claims["cnf"] = {"jkt": proof.jkt}
        claims.update(_pdp_claims(claims, shape))
        body: dict[str, Any] = {
            "access_token": await mint(self._keys, claims, typ=ID_JAG_TYP),
            "issued_token_type": ID_JAG_TOKEN_TYPE,
            "token_type": "N_A",
            "expires_in": lifetime,
        }
        if scope:
            body["scope"] = " ".join(scope)
        return body

    async def _refresh_token(
        self,
        grant_type: str,
        client: Client,
        principal: Principal,
        details: list[dict[str, Any]],
        scope: list[str],
        resource: list[str],
        proof: DPoPProof | None,
        now: int,
    ) -> str | None:
        previous = principal.refresh
        if previous is not None:
            if await self._store.use_refresh_token(previous.token_hash, now) is None:
                raise InvalidGrant("the refresh token is not valid")
            family, expires_at = previous.family_id, previous.expires_at
        elif client.refresh_tokens and grant_type != CLIENT_CREDENTIALS:
            family = principal.family_id or secrets.token_urlsafe(16)
            expires_at = now + self._settings.oauth.refresh_token_lifetime_seconds
        else:
            return None
        token = secrets.token_urlsafe(32)
        # A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
        jkt = proof.jkt if proof is not None and client.auth_method == "none" else None
        grant = {
            "subject": principal.subject.model_dump(exclude_none=True),
            "token_sub": principal.token_sub,
            "act": principal.act,
            "authorization_details": details,
            "scope": scope,
            "resource": resource,
            "jkt": jkt,
            # A refreshed token says how the person authenticated, as the first one did.
            "authentication": principal.authentication,
        }
        await self._store.save_refresh_token(
            RefreshTokenRecord(
                token_hash=refresh_token_hash(token),
                family_id=family,
                client_id=client.client_id,
                grant=json.dumps(grant),
                issued_at=now,
                expires_at=expires_at,
            )
        )
        return token


def audience(resource: list[str], details: list[dict[str, Any]], issuer: str) -> list[str]:
    """RFC 8707 `resource` values when sent; else the origins of the granted `locations`
    (RFC 9396 §2.2: locations restrict where the token may be used); else the issuer."""
    if resource:
        return list(dict.fromkeys(resource))
    origins = []
    for entry in details:
        for location in entry.get("locations", []):
            parts = urlsplit(location)
            if parts.scheme and parts.netloc:
                origins.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(origins)) or [issuer]


def _pdp_claims(own: dict[str, Any], shape: TokenShape | None) -> dict[str, Any]:
    """The PDP's claims (§6.4.5), which never replace one the AS set itself."""
    if shape is None or not shape.claims:
        return {}
    claims = dict(shape.claims)
    taken = sorted((set(own) | RESERVED_CLAIMS) & set(claims))
    if taken:
        raise UnusableIssuance(f"claims sets {taken[0]!r}, which the token already carries")
    return claims
