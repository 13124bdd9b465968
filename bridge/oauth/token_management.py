"""What introspection (RFC 7662) and revocation (RFC 7009) share: both take a `token` from an
authenticated client, and both look at the bridge's own access tokens and refresh tokens."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

from ..jose.signing_keys import SigningKeys
from ..store.contract import RefreshTokenStore, RevocationStore
from .client_auth import ClientAuthenticator
from .clients import Client
from .form import read_form


class TokenStore(RefreshTokenStore, RevocationStore, Protocol):
    pass


class TokenManagementEndpoint:
    def __init__(
        self,
        clients: ClientAuthenticator,
        keys: SigningKeys,
        store: TokenStore,
        issuer: str,
        max_body_bytes: int,
    ) -> None:
        self.clients = clients
        self.keys = keys
        self.store = store
        self.issuer = issuer
        self.max_body_bytes = max_body_bytes

    async def _client_and_token(self, request: Request) -> tuple[Client, str]:
        """Raises an `OAuthError` when the form, the client or the token is missing."""
        form = await read_form(request, self.max_body_bytes)
        client = await self.clients.authenticate(request.headers, form.as_dict())
        return client, form.require("token")
