"""Deferred Token Responses at the token endpoint (DTR, with the Access Request OAuth
Profile): a token request the policies allow only with an approval is held open.

- On a requestable denial, a client that opted in (`completion_mode=deferred`) gets one
  access request filed for everything denied and the deferred response; it then polls with
  the deferred grant.
- The same request again while that deferral is pending files nothing: it gets the same code
  back, with the seconds the code has left (AROP §3, "idempotent submission").
- When the access request ends, the original request is evaluated again with each item's
  approval in `context.approval`; the outcome is stored and the client pinged.
- At redemption the same evaluation runs once more (the approval may have been revoked, the
  policies may have changed) before the code is spent and the token issued, capped by the
  approval's `approved_until`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import rfc8785

from ..access_requests.service import DeniedEvaluation
from ..access_requests.times import parse_rfc3339
from ..authzen.models import Decision, EvaluationRequest, EvaluationsSemantic, Subject
from ..authzen.pdp import PDP
from ..deferral.errors import AuthorizationPending
from ..deferral.models import DeferralExpired, Resolution, check_notification_token
from ..deferral.service import DeferralService
from ..errors import AccessDenied, InvalidGrant, InvalidRequest
from ..outbox import Delivered, Outcome
from ..rar.translate import PlannedEvaluation
from ..store.contract import OutboxRow
from .access_request_backend import AccessRequestBackend
from .clients import Client
from .dpop import DPoPProof
from .form import Form
from .grants.base import Principal
from .issuance import Issuer
from .requested_access import RequestedAccess

log = logging.getLogger("bridge.oauth.deferred")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:deferred"
DEFERRAL_CODE_TYPE = "urn:ietf:params:oauth:token-type:deferral-code"
TASK_TERMINAL = "task_terminal"


def opted_in(form: Form) -> bool:
    """`completion_mode` is a space-separated list; unknown values are ignored (DTR §5)."""
    return "deferred" in set((form.get("completion_mode") or "").split())


class DeferredFlow:
    def __init__(
        self,
        deferrals: DeferralService,
        access_requests: AccessRequestBackend,
        pdp: PDP,
        issuer: Issuer,
    ) -> None:
        self._deferrals = deferrals
        self._access_requests = access_requests
        self._pdp = pdp
        self._issuer = issuer

    # -- the originating request ---------------------------------------------------------

    def check_request(self, form: Form, client: Client, *, proof_sent: bool) -> None:
        """DTR's checks on an opted-in request, before anything is decided."""
        if not opted_in(form):
            return
        if client.auth_method == "none" and not proof_sent:
            raise InvalidRequest("a public client needs DPoP to ask for a deferred response")
        check_notification_token(form.get("client_notification_token"))

    async def defer(
        self,
        *,
        form: Form,
        client: Client,
        proof: DPoPProof | None,
        grant_type: str,
        principal: Principal,
        access: RequestedAccess,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
    ) -> NoReturn:
        jkt = proof.jkt if proof is not None else None
        request: dict[str, Any] = {
            "grant_type": grant_type,
            "principal": {
                "subject": principal.subject.model_dump(exclude_none=True),
                "token_sub": principal.token_sub,
                "act": principal.act,
            },
            "details": access.details,
            "scope": access.scope,
            "resource": access.resource,
        }
        identity = request_identity(client.client_id, jkt, request)
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
        denied = [n for n, decision in enumerate(decisions) if not decision.decision]
        task = await self._access_requests.file(
            [DeniedEvaluation(planned[n].request, decisions[n].context or {}) for n in denied],
            client.client_id,
        )
        snapshot = {
            **request,
            "evaluations": [p.request.model_dump(exclude_none=True) for p in planned],
            "denied": denied,
        }
        body = await self._deferrals.defer(
            client,
            jkt,
            snapshot,
            task.id,
            task.expires_at,
            form.get("client_notification_token"),
            dedupe_key=key,
        )
        raise AuthorizationPending({k: v for k, v in body.items() if k != "error"})

    # -- polling -------------------------------------------------------------------------

    async def poll(self, form: Form, client: Client, proof: DPoPProof | None) -> dict[str, Any]:
        for name in ("authorization_details", "scope", "resource", "completion_mode"):
            if name in form:
                raise InvalidRequest(f"a poll cannot change the request: {name} is not allowed")
        code = form.require("deferral_code")
        try:
            ready = await self._deferrals.poll(client, code, proof.jkt if proof else None)
        except DeferralExpired as expired:
            if expired.task_id is not None:
                await self._cancel_task(expired.task_id, client.client_id)
            raise
        snapshot = ready.snapshot
        ok, until = await self._reevaluate(snapshot, ready.approvals)
        if not ok:
            await self._deferrals.deny(ready)
            raise AccessDenied("the request is not permitted")
        if not await self._deferrals.redeem(ready):
            # Someone else changed the code meanwhile (a concurrent poll redeemed it, a
            # revocation cancelled it, it expired): answer as its state now says.
            await self._deferrals.poll(client, code, proof.jkt if proof else None)
            raise InvalidGrant("the deferral code was already redeemed")
        principal = snapshot["principal"]
        caps = [t for t in (until, ready.approved_until) if t is not None]
        return await self._issuer.issue(
            grant_type=snapshot["grant_type"],
            client=client,
            principal=Principal(
                subject=Subject.model_validate(principal["subject"]),
                token_sub=principal["token_sub"],
                act=principal.get("act"),
            ),
            details=snapshot["details"],
            scope=snapshot["scope"],
            resource=snapshot["resource"],
            proof=proof,
            not_after=min(caps) if caps else None,
        )

    # -- when the access request ends ----------------------------------------------------

    async def on_task_terminal(self, row: OutboxRow) -> Outcome:
        """Outbox handler: settle every deferral waiting on the task that ended."""
        task_id = row.payload.decode("utf-8")
        await self._deferrals.resolve_task(task_id, self._decide)
        return Delivered()

    async def _decide(self, snapshot: dict[str, Any], task_id: str) -> Resolution:
        outcome = await self._access_requests.outcome(task_id)
        if outcome.status != "approved":
            return Resolution(ok=False)
        approvals = outcome.approvals
        ok, until = await self._reevaluate(snapshot, approvals)
        return Resolution(ok=ok, approved_until=until, approvals=approvals)

    async def _reevaluate(
        self, snapshot: dict[str, Any], approvals: list[dict[str, Any]]
    ) -> tuple[bool, float | None]:
        """The original evaluations again, each denied one with its item's approval copied
        unchanged into `context.approval` (ARAP §11)."""
        evaluations = [EvaluationRequest.model_validate(e) for e in snapshot["evaluations"]]
        denied: list[int] = snapshot["denied"]
        if len(approvals) != len(denied) or not all(a.get("id") for a in approvals):
            return False, None
        for n, approval in zip(denied, approvals, strict=True):
            request = evaluations[n]
            context = {**(request.context or {}), "approval": approval}
            evaluations[n] = request.model_copy(update={"context": context})
        decisions = await self._pdp.evaluations(evaluations, EvaluationsSemantic.execute_all)
        if not decisions or not all(d.decision for d in decisions):
            return False, None
        ends = [parse_rfc3339(a.get("approved_until")) for a in approvals]
        ends += [
            parse_rfc3339(((d.context or {}).get("approval") or {}).get("approved_until"))
            for d in decisions
        ]
        known = [end for end in ends if end is not None]
        return True, (min(known) if known else None)

    # -- cancellation --------------------------------------------------------------------

    async def revoke(self, client: Client, code: str, proof: DPoPProof | None) -> None:
        """`/revoke` with a deferral code: cancel it and, when it was the last one waiting,
        its access request."""
        task_id = await self._deferrals.cancel(client, code, proof.jkt if proof else None)
        if task_id is not None:
            await self._cancel_task(task_id, client.client_id)

    async def _cancel_task(self, task_id: str, client_id: str) -> None:
        try:
            await self._access_requests.cancel(task_id, client_id)
        except Exception as exc:  # already terminal, or gone: nothing left to cancel
            log.info("access request %s not cancelled: %s", task_id, exc)


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


def requestable(decision: Decision) -> bool:
    """ARAP: a denial with `context.access_request` can be requested."""
    return (
        not decision.decision
        and decision.context is not None
        and isinstance(decision.context.get("access_request"), dict)
    )
