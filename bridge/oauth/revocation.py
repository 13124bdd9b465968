"""RFC 7009 token revocation.

A client may revoke its own refresh tokens (the whole rotation family goes) and its own
access tokens (their `jti` is refused by introspection until they expire). Whatever the
token, the answer is 200 once the client is authenticated, so nothing can be learnt from it.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from .access_tokens import read
from .deferred import DeferredFlow
from .dpop import DPoPVerifier
from .errors import InvalidDPoPProof
from .grants.refresh_token import refresh_token_hash
from .responses import error_response
from .token_management import TokenManagementEndpoint


class RevocationEndpoint(TokenManagementEndpoint):
    # Deferral codes are revoked too (DTR §8): that cancels the deferred request. A code bound
    # to a DPoP key needs a proof from that key, made for this endpoint.
    deferred: DeferredFlow | None = None
    dpop: DPoPVerifier | None = None
    url: str = ""

    async def handle(self, request: Request) -> Response:
        try:
            client, token = await self._client_and_token(request)
            if self.deferred is not None and self.dpop is not None:
                try:
                    proof = await self.dpop.verify(
                        request.headers.get("dpop"), method="POST", url=self.url
                    )
                except InvalidDPoPProof:
                    # Only a DPoP-bound deferral code needs the proof; revoking one without a
                    # valid proof fails below, anything else is revoked regardless.
                    proof = None
                await self.deferred.revoke(client, token, proof)
        except OAuthError as error:
            return error_response(error)
        # The hint only says where to look first; every kind is tried (RFC 7009 §2.1).
        record = await self._store.find_refresh_token(refresh_token_hash(token))
        if record is not None and record.client_id == client.client_id:
            await self._store.revoke_refresh_family(record.family_id, time.time())
        elif token.count(".") == 2:
            claims = await read(self._keys, token, self._issuer)
            if claims is not None and claims.get("client_id") == client.client_id:
                await self._store.revoke_access_token(str(claims["jti"]), float(claims["exp"]))
        return Response(status_code=200, headers={"Cache-Control": "no-store"})
