"""RFC 6749 §6 refresh, with rotation: the principal and the granted access come from the
stored grant; the token endpoint re-evaluates them, and only then is the token used up.

A refresh token bound to a DPoP key (issued to a public client) needs a proof from that key.
"""

from __future__ import annotations

import hashlib
import json
import time

from ...authzen.models import Subject
from ...errors import InvalidGrant
from ...store.contract import RefreshTokenStore
from ..errors import InvalidDPoPProof
from .base import Principal, PrincipalGrant, RefreshContext, TokenRequest

GRANT_TYPE = "refresh_token"


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class RefreshTokenGrant(PrincipalGrant):
    grant_type = GRANT_TYPE
    own_parameters = frozenset({"refresh_token"})

    def __init__(self, store: RefreshTokenStore) -> None:
        self._store = store

    async def principal(self, request: TokenRequest) -> Principal:
        token_hash = refresh_token_hash(request.form.require("refresh_token"))
        record = await self._store.find_refresh_token(token_hash)
        now = time.time()
        if record is None or record.client_id != request.client.client_id:
            raise InvalidGrant("the refresh token is not valid")
        if record.used_at is not None:
            # Presented again after rotation: treat it as stolen (revokes the family).
            await self._store.use_refresh_token(token_hash, now)
            raise InvalidGrant("the refresh token is not valid")
        if record.revoked_at is not None or record.expires_at <= now:
            raise InvalidGrant("the refresh token is not valid")
        grant = json.loads(record.grant)
        jkt = grant.get("jkt")
        if jkt is not None and (request.proof is None or request.proof.jkt != jkt):
            raise InvalidDPoPProof("the refresh token is bound to another DPoP key")
        return Principal(
            subject=Subject.model_validate(grant["subject"]),
            token_sub=grant["token_sub"],
            act=grant.get("act"),
            granted_details=grant.get("authorization_details"),
            granted_scope=grant.get("scope"),
            granted_resource=grant.get("resource"),
            authentication=grant.get("authentication"),
            refresh=RefreshContext(token_hash, record.family_id, record.expires_at, jkt),
        )
