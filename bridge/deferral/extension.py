"""Deferred Token Responses on every other grant (DTR §5, §6.3, §8, with AROP):

- a client opts in with `completion_mode=deferred`; a public client must then send DPoP;
- on a requestable denial, one access request is filed for everything denied and the
  deferred response (400 `authorization_pending` with the code) answers instead of the
  refusal; the client then polls with the deferred grant (`grant.DeferredGrant`). A denial
  requestable only with a request form the token request does not fill is not filed
  (`FormInputRequired`): the refusal of a plain denial answers;
- the same request again while that deferral is pending files nothing: it gets the same code
  back, with the seconds the code has left (AROP §3, "idempotent submission");
- the revocation endpoint cancels a deferral code (and, when it was the last one waiting, its
  access request).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import rfc8785

from ..access_requests.filing import AccessRequestFiling, FormInputRequired
from ..authzen.models import Decision, requestable_denial
from ..errors import InvalidRequest
from ..oauth.clients import Client
from ..oauth.completion_mode import defers
from ..oauth.dpop import DPoPProof
from ..oauth.extensions import NoExtension
from ..oauth.grants.base import Principal, TokenRequest
from ..oauth.requested_access import RequestedAccess
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation
from .errors import AuthorizationPending
from .filing import asked_of, file_and_defer
from .grant import cancel_quietly
from .models import DEFERRAL_CODE_TOKEN_TYPE, GRANT_DEFERRED, check_notification_token
from .service import DeferralService

log = logging.getLogger("bridge.deferral")


def opted_in(request: TokenRequest) -> bool:
    """`completion_mode` is a space-separated list; unknown values are ignored (DTR §5)."""
    return defers(request.form.get("completion_mode"))


class DeferredResponses(NoExtension):
    parameters = frozenset({"completion_mode", "client_notification_token"})

    def __init__(
        self, deferrals: DeferralService, filing: AccessRequestFiling, profiles: ProfileSet
    ) -> None:
        self._deferrals = deferrals
        self._filing = filing
        self._profiles = profiles

    # -- the originating request ---------------------------------------------------------

    def check(self, request: TokenRequest, *, proof_sent: bool) -> None:
        """DTR's checks on an opted-in request, before anything is decided."""
        if not opted_in(request):
            return
        if request.client.auth_method == "none" and not proof_sent:
            raise InvalidRequest("a public client needs DPoP to ask for a deferred response")
        check_notification_token(request.form.get("client_notification_token"))

    async def on_denial(
        self,
        request: TokenRequest,
        grant_type: str,
        principal: Principal,
        access: RequestedAccess,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
    ) -> None:
        if not (opted_in(request) and request.client.allows_grant(GRANT_DEFERRED)):
            return  # not opted in, or not allowed to poll: a deferral could not be collected
        if all(requestable_denial(d) for d in decisions if not d.decision):
            try:
                await self._defer(request, grant_type, principal, access, planned, decisions)
            except FormInputRequired as exc:
                # Requestable only with a request form a token request cannot fill: nothing
                # was filed, and the token endpoint answers as for a plain denial.
                log.info(
                    "a deferred request of %s was not filed: %s", request.client.client_id, exc
                )

    def denial_hint(self, decision: Decision) -> str | None:
        if requestable_denial(decision) and not needs_form(decision):
            return "it can be approved: retry with completion_mode=deferred"
        return None

    async def _defer(
        self,
        request: TokenRequest,
        grant_type: str,
        principal: Principal,
        access: RequestedAccess,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
    ) -> NoReturn:
        client, proof = request.client, request.proof
        jkt = proof.jkt if proof is not None else None
        asked = asked_of(grant_type, principal, access)
        identity = request_identity(client.client_id, jkt, asked)
        key = self._deferrals.request_key(identity) if identity is not None else None
        if key is not None:
            # Asked before and still pending: the same code, and no second access request.
            body = await self._deferrals.repeat(
                client,
                jkt,
                key,
                lambda stored: request_identity(client.client_id, jkt, stored) == identity,
            )
            if body is not None:
                log.info("a repeated deferred request of %s got its pending code", client.client_id)
                raise AuthorizationPending({k: v for k, v in body.items() if k != "error"})
        body = await file_and_defer(
            self._deferrals,
            self._filing,
            self._profiles,
            client=client,
            jkt=jkt,
            asked=asked,
            planned=planned,
            decisions=decisions,
            notification_token=request.form.get("client_notification_token"),
            dedupe_key=key,
        )
        raise AuthorizationPending({k: v for k, v in body.items() if k != "error"})

    # -- cancellation (DTR §8) -------------------------------------------------------------

    def revocable_token_types(self) -> list[str]:
        return [DEFERRAL_CODE_TOKEN_TYPE]

    async def revoke(self, client: Client, token: str, proof: DPoPProof | None) -> None:
        """Cancel the client's deferral and, when it was the last one waiting, its access
        request (AROP §7). Not a deferral code of this client: nothing happens."""
        task_id = await self._deferrals.cancel(client, token, proof.jkt if proof else None)
        if task_id is not None:
            await cancel_quietly(self._filing, task_id, client.client_id)

    def metadata(self) -> dict[str, Any]:
        return {"deferred_token_response_supported": True}


def needs_form(decision: Decision) -> bool:
    """Whether the denial asks for a request form (ARAP's `request_schema_url`, the Catalog
    profile's `request_catalogs_url`), which a token request may not be able to fill."""
    access = (decision.context or {}).get("access_request")
    return isinstance(access, dict) and (
        "request_schema_url" in access or "request_catalogs_url" in access
    )


def request_identity(client_id: str, jkt: str | None, request: Mapping[str, Any]) -> bytes | None:
    """What makes two deferred requests "the same request" (AROP §3): the client, its DPoP
    key, the grant type, the principal (subject with its actor, token subject, `act`), the
    authorization details, scope and resource, as RFC 8785 JSON. `request` is a deferral
    snapshot or its request part. Scope and resource are sets: sorted, duplicates dropped;
    the details keep their order. The grant type is there because the token issued at
    redemption carries the deferral's. None when the request has no RFC 8785 form (e.g. an
    integer beyond 2^53 in the details): it is then never deduplicated."""
    try:
        return rfc8785.dumps(
            {
                "client_id": client_id,
                "dpop_jkt": jkt,
                "grant_type": request.get("grant_type"),
                "principal": request.get("principal"),
                "authorization_details": request.get("details") or [],
                "scope": sorted(set(request.get("scope") or [])),
                "resource": sorted(set(request.get("resource") or [])),
            }
        )
    except (rfc8785.CanonicalizationError, TypeError, AttributeError) as exc:
        log.info(
            "a deferred request without an RFC 8785 form is not deduplicated (%s)",
            type(exc).__name__,
        )
        return None
