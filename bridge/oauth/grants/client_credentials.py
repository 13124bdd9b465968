"""RFC 6749 §4.4: the client acts for itself, so the client is the principal."""

from __future__ import annotations

from ...errors import UnauthorizedClient
from .base import Principal, PrincipalGrant, TokenRequest, subject_with_actor

GRANT_TYPE = "client_credentials"


class ClientCredentialsGrant(PrincipalGrant):
    grant_type = GRANT_TYPE
    own_parameters = frozenset()

    def __init__(self, client_subject_type: str) -> None:
        self._subject_type = client_subject_type

    async def principal(self, request: TokenRequest) -> Principal:
        client = request.client
        if client.auth_method == "none":
            # §4.4: only confidential clients may use this grant.
            raise UnauthorizedClient("a public client cannot use client_credentials")
        return Principal(
            subject=subject_with_actor(self._subject_type, client.client_id, None),
            token_sub=client.client_id,
        )
