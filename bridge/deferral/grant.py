"""The deferred grant (DTR §6.5): `grant_type=urn:ietf:params:oauth:grant-type:deferred`, the
client polls with its `deferral_code` until the deferred request is settled.

A poll may not change the request (DTR §4.1): `authorization_details`, `scope`, `resource`
and `completion_mode` are refused. An approved code is decided once more before it is spent
(single use, one compare-and-set): the decisions' obligations carried out (one that cannot
be is a denial; nobody can sign in again here, so a step-up is one), the authorization
claims searched, and the token is capped by the approval's end.

Other polling grants redeem their own kind of deferral the same way (`redeem`): CIBA's
(`bridge.ciba.grant`) is this class with another grant type and parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from ..access_requests.filing import AccessRequestFiling
from ..authzen.models import Subject
from ..errors import AccessDenied, InvalidGrant
from ..oauth.access_decision import AccessDecision
from ..oauth.grants.base import Principal, TokenRequest
from ..oauth.issuance import Issuer
from ..oauth.issuance_shaping import NotAsApproved
from ..oauth.pdp_mapping import Granted
from .models import DEFERRAL_CODE_HANDLE, GRANT_DEFERRED, DeferralExpired
from .pkce import PKCEFailed
from .reevaluation import Reevaluation
from .service import DeferralService

log = logging.getLogger("bridge.deferral")


class DeferredGrant:
    grant_type = GRANT_DEFERRED
    # `code_verifier`: a deferral made at the authorization endpoint, first poll (pkce.py).
    parameters = frozenset({"deferral_code", "code_verifier"})
    refused = frozenset({"authorization_details", "scope", "resource", "completion_mode"})
    extensible = False

    def __init__(
        self,
        deferrals: DeferralService,
        reevaluation: Reevaluation,
        filing: AccessRequestFiling,
        issuer: Issuer,
        decision: AccessDecision,
    ) -> None:
        self._deferrals = deferrals
        self._reevaluation = reevaluation
        self._filing = filing
        self._issuer = issuer
        self._decision = decision

    async def token(self, request: TokenRequest) -> dict[str, Any]:
        code = request.form.require("deferral_code")
        return await self.redeem(request, code, request.form.get("code_verifier"))

    async def redeem(
        self,
        request: TokenRequest,
        code: str,
        verifier: str | None = None,
        *,
        handle: str = DEFERRAL_CODE_HANDLE,
    ) -> dict[str, Any]:
        """Poll the deferral of `code` (a code the client knows as `handle`), and once it is
        approved: decide again, spend it once, issue."""
        client, proof = request.client, request.proof
        jkt = proof.jkt if proof is not None else None
        try:
            ready = await self._deferrals.poll(client, code, jkt, verifier, handle=handle)
        except (DeferralExpired, PKCEFailed) as ended:
            if ended.task_id is not None:
                await cancel_quietly(self._filing, ended.task_id, client.client_id)
            raise
        snapshot = ready.snapshot
        principal = _principal(snapshot["principal"])
        ok, until, decided = await self._reevaluation.redecide(snapshot, ready.approvals)
        shape = None
        try:
            # The token issuance mapping's `context.issuance`, all or nothing here too.
            if ok:
                shape = self._issuer.redeemed_shape(
                    *decided, scope=snapshot["scope"], details=snapshot["details"]
                )
        except NotAsApproved:
            ok = False
        if ok:
            honoured = await self._decision.obligations.enforce(
                *decided,
                grant_type=self.grant_type,
                client_id=client.client_id,
                principal=principal,
            )
            ok = all(d.decision for d in honoured)
        if not ok:
            await self._deferrals.deny(ready)
            raise AccessDenied("the request is not permitted")
        granted = Granted(snapshot["details"], snapshot["scope"], snapshot["resource"], shape)
        # Searched before the code is spent: a refusal then leaves it to be polled again.
        context = decided[0][0].context if decided[0] else None
        claims = await self._decision.authorization_claims(principal, context, granted)
        if not await self._deferrals.redeem(ready):
            # Someone else changed the code meanwhile (a concurrent poll redeemed it, a
            # revocation cancelled it, it expired): answer as its state now says.
            await self._deferrals.poll(client, code, jkt, handle=handle)
            raise InvalidGrant("the deferral code was already redeemed")
        caps = [t for t in (until, ready.approved_until) if t is not None]
        return await self._issuer.issue(
            grant_type=snapshot["grant_type"],
            client=client,
            principal=principal,
            details=snapshot["details"],
            scope=snapshot["scope"],
            resource=snapshot["resource"],
            proof=proof,
            not_after=min(caps) if caps else None,
            shape=shape,
            authorization_claims=claims,
            approvals=(
                [str(a["id"]) for a in ready.approvals if a.get("id")]
                if self._filing.local_approvals
                else ()
            ),
        )


def _principal(stored: dict[str, Any]) -> Principal:
    return Principal(
        subject=Subject.model_validate(stored["subject"]),
        token_sub=stored["token_sub"],
        act=stored.get("act"),
    )


async def cancel_quietly(filing: AccessRequestFiling, task_id: str, client_id: str) -> None:
    """Cancel the access request nobody waits on; one that already ended stays as it is."""
    try:
        await filing.cancel(task_id, client_id)
    except Exception as exc:  # already terminal, or gone: nothing left to cancel
        log.info("access request %s not cancelled: %s", task_id, exc)
