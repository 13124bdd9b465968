"""RFC 7009 token revocation.

A client may revoke its own refresh tokens (the whole rotation family goes) and its own
access tokens (their `jti` is refused by introspection until they expire); extensions revoke
their own kinds (a deferral code cancels its deferred request, DTR §8). Whatever the token,
the answer is 200 once the client is authenticated, so nothing can be learnt from it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from .access_tokens import read
from .dpop import DPoPProof, DPoPVerifier
from .errors import InvalidDPoPProof
from .extensions import TokenExtension
from .grants.refresh_token import refresh_token_hash
from .responses import error_response
from .token_management import TokenManagementEndpoint


class RevocationEndpoint(TokenManagementEndpoint):
    def __init__(
        self,
        base: TokenManagementEndpoint,
        url: str,
        dpop: DPoPVerifier,
        extensions: Sequence[TokenExtension],
    ) -> None:
        """`url` is the endpoint's own (a DPoP proof's `htu`); `extensions` the assembly's
        list (later installs count)."""
        super().__init__(base.clients, base.keys, base.store, base.issuer, base.max_body_bytes)
        self._url = url
        self._dpop = dpop
        self._extensions = extensions

    async def handle(self, request: Request) -> Response:
        try:
            client, token = await self._client_and_token(request)
            proof = await self._optional_proof(request)
            for extension in self._extensions:
                await extension.revoke(client, token, proof)
        except OAuthError as error:
            return error_response(error)
        # The hint only says where to look first; every kind is tried (RFC 7009 §2.1).
        record = await self.store.find_refresh_token(refresh_token_hash(token))
        if record is not None and record.client_id == client.client_id:
            await self.store.revoke_refresh_family(record.family_id, time.time())
        elif token.count(".") == 2:
            claims = await read(self.keys, token, self.issuer)
            if claims is not None and claims.get("client_id") == client.client_id:
                await self.store.revoke_access_token(str(claims["jti"]), float(claims["exp"]))
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def _optional_proof(self, request: Request) -> DPoPProof | None:
        """A DPoP proof made for this endpoint, if one came. Only what is bound to a key
        (a DPoP-bound deferral code) needs it; an invalid one counts as none, and revoking
        such a token fails where the extension checks its key."""
        if not self._extensions:
            return None
        try:
            return await self._dpop.verify(
                request.headers.get("dpop"), method="POST", url=self._url
            )
        except InvalidDPoPProof:
            return None
