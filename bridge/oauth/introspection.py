"""RFC 7662 token introspection, for resource servers (authenticated as clients).

Access tokens are the bridge's own JWTs (signature, issuer, expiry, not revoked); refresh
tokens are looked up by hash and shown only to the client they were issued to. Anything
else is `{"active": false}`, with no reason given.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import InvalidClient, OAuthError
from .access_tokens import read
from .clients import Client
from .grants.refresh_token import refresh_token_hash
from .introspection_checks import IntrospectionCheck
from .responses import error_response
from .token_management import TokenManagementEndpoint

_INACTIVE = {"active": False}
_SHOWN_CLAIMS = (
    "iss", "sub", "aud", "client_id", "iat", "exp", "jti", "scope", "authorization_details",
    "act", "cnf",
)  # fmt: skip


class IntrospectionEndpoint(TokenManagementEndpoint):
    # What other parts add (`introspection_checks`): the OAuth assembly's list.
    checks: Sequence[IntrospectionCheck] = ()

    async def handle(self, request: Request) -> Response:
        try:
            client, token = await self._client_and_token(request)
            if client.auth_method == "none":
                # RFC 7662 §4: an unauthenticated caller could scan for live tokens.
                raise InvalidClient("introspection needs an authenticated client")
        except OAuthError as error:
            return error_response(error)
        body = await self._access_token(token)
        if body is None:
            body = await self._refresh_token(token, client)
        return JSONResponse(body or _INACTIVE, headers={"Cache-Control": "no-store"})

    async def _access_token(self, token: str) -> dict[str, Any] | None:
        if token.count(".") != 2:
            return None
        claims = await read(self.keys, token, self.issuer)
        if claims is None or await self.store.is_access_token_revoked(str(claims.get("jti"))):
            return None
        for check in self.checks:
            if not await check.active(claims):
                return None
        body: dict[str, Any] = {"active": True}
        body.update({k: claims[k] for k in _SHOWN_CLAIMS if k in claims})
        body["token_type"] = "DPoP" if "cnf" in claims else "Bearer"
        return body

    async def _refresh_token(self, token: str, client: Client) -> dict[str, Any] | None:
        record = await self.store.find_refresh_token(refresh_token_hash(token))
        if (
            record is None
            or record.client_id != client.client_id
            or record.used_at is not None
            or record.revoked_at is not None
            or record.expires_at <= time.time()
        ):
            return None
        return {
            "active": True,
            "client_id": record.client_id,
            "iat": int(record.issued_at),
            "exp": int(record.expires_at),
        }
