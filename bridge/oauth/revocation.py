"""RFC 7009 token revocation.

A client may revoke its own refresh tokens (the whole rotation family goes) and its own
access tokens (their `jti` is refused by introspection until they expire). Whatever the
token, the answer is 200 once the client is authenticated, so nothing can be learnt from it.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from .access_tokens import read
from .client_auth import ClientAuthenticator
from .errors import OAuthError
from .form import read_form
from .grants.refresh_token import refresh_token_hash
from .introspection import TokenStore
from .keys import SigningKeys


class RevocationEndpoint:
    def __init__(
        self,
        clients: ClientAuthenticator,
        keys: SigningKeys,
        store: TokenStore,
        issuer: str,
        max_body_bytes: int,
    ) -> None:
        self._clients = clients
        self._keys = keys
        self._store = store
        self._issuer = issuer
        self._max_body_bytes = max_body_bytes

    async def handle(self, request: Request) -> Response:
        try:
            form = await read_form(request, self._max_body_bytes)
            client = await self._clients.authenticate(request.headers, form.as_dict())
            token = form.require("token")
        except OAuthError as error:
            return error.response()
        # The hint only says where to look first; both kinds are tried (RFC 7009 §2.1).
        record = await self._store.find_refresh_token(refresh_token_hash(token))
        if record is not None and record.client_id == client.client_id:
            await self._store.revoke_refresh_family(record.family_id, time.time())
        elif token.count(".") == 2:
            claims = await read(self._keys, token, self._issuer)
            if claims is not None and claims.get("client_id") == client.client_id:
                await self._store.revoke_access_token(str(claims["jti"]), float(claims["exp"]))
        return Response(status_code=200, headers={"Cache-Control": "no-store"})
