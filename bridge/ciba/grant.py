"""The CIBA grant (OpenID CIBA Core 1.0 §10.1, §11): `grant_type=urn:openid:params:grant-type:ciba`
with the `auth_req_id` the backchannel authentication endpoint returned.

The `auth_req_id` is a deferral code (`bridge.deferral`), so this is the deferred grant
(`deferral.grant.DeferredGrant`) with another grant type and parameter, and the same
answers: `authorization_pending` and `slow_down` while she or the approvers have not
answered (§11), `access_denied` after a decline or a denial, `expired_token` past its end,
the token once (a second redemption: `invalid_grant`), every poll proving the DPoP key the
request was bound to (AROP §12), the token capped by `approved_until`. A deferral code is no
`auth_req_id`, nor the other way round: each grant redeems only its own.

Both modes poll (§10.1; in `ping` mode after the ping, §10.2): there is no `push`.
"""

from __future__ import annotations

from typing import Any

from ..deferral.grant import DeferredGrant
from ..oauth.clients import GRANT_CIBA
from ..oauth.grants.base import TokenRequest

AUTH_REQ_ID = "auth_req_id"


class CibaGrant(DeferredGrant):
    grant_type = GRANT_CIBA
    parameters = frozenset({AUTH_REQ_ID})

    async def token(self, request: TokenRequest) -> dict[str, Any]:
        return await self.redeem(request, request.form.require(AUTH_REQ_ID), handle=AUTH_REQ_ID)
