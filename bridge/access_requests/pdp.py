"""`ARAPDecisionPoint`: the embedded PDP as ARAP wants it, around the Cedar PDP.

On the way in, a `context.approval` is checked before Cedar sees it: the approval id must
name an approval granted for this store, not revoked, not past `approved_until`, whose
bound subject (actor excluded), resource, action and authorization-relevant context are
exactly the request's (ARAP §11, exact scope). A valid one reaches Cedar as
`context.approval = {"id", "template", "approved_until"}` with the stored values; any other
is removed, so a forged or unrelated approval grants nothing.

On the way out, a denial Cedar found requestable (an `@approval` forbid) becomes ARAP's
requestable denial (§2) with a signed `binding_token`; a permit that used an approval says
so in `context.approval`, whose `approved_until` bounds what a PEP derives from it. Every
other decision passes unchanged (batch items stay exactly `{"decision": b}`). Searches are
delegated unchanged.

An evaluation that presents an approval this store granted (in force, revoked or expired)
is a re-evaluation: its decision gets an `evaluation_id`, and the audit trail records it
with the approval, the decision and the policies' version, before the decision is answered
(no audit entry, no decision).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..authzen.errors import PDPError
from ..authzen.models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    JSONObject,
    ResourceSearchRequest,
    SearchResult,
    SubjectSearchRequest,
)
from ..authzen.pdp import PDP, policy_version
from ..store.contract import ApprovalRecord, AuditEvent
from . import audit_events
from .binding import CanonicalizationError, relevant_members, request_binding_hash
from .binding_token import BindingTokens
from .times import rfc3339

APPROVAL_REQUIRED = "approval_required"


class ApprovalLookup(Protocol):
    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]: ...

    async def audit_append(self, events: Sequence[AuditEvent]) -> None: ...


# (the request as Cedar sees it, the approval that applies, the approval it claimed)
_Checked = tuple[EvaluationRequest, ApprovalRecord | None, ApprovalRecord | None]


class ARAPDecisionPoint:
    def __init__(
        self,
        inner: PDP,
        *,
        pdp_id: str,
        approvals: ApprovalLookup,
        tokens: BindingTokens,
        endpoint: str,
        binding_context_members: Sequence[str],
        denial_lifetime_seconds: int,
        requestable_denials: bool = True,
        form_urls: Callable[[str, str], dict[str, str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`pdp_id` names the store (its `policy_decision_point`); `endpoint` is the access
        request endpoint; `requestable_denials=False` keeps every denial plain (no approver
        could act, e.g. `access_requests.approver_issuer` unset); `form_urls(pdp_id,
        template)` gives the request form's members of a template's denials
        (`request_schema_url`, `request_catalogs_url`; `forms.RequestForms.urls`)."""
        self.inner = inner
        self.pdp_id = pdp_id
        self._approvals = approvals
        self._tokens = tokens
        self._endpoint = endpoint
        self._members = relevant_members(binding_context_members)
        self._lifetime = denial_lifetime_seconds
        self._requestable = requestable_denials
        self._form_urls = form_urls
        self._clock = clock

    async def evaluate(self, request: EvaluationRequest) -> Decision:
        [(checked, approval, claimed)] = await self._check_approvals([request])
        decision = await self.inner.evaluate(checked)
        [finished] = await self._audited(
            [claimed], [await self._finish(checked, decision, approval)]
        )
        return finished

    async def evaluations(
        self,
        requests: Sequence[EvaluationRequest],
        semantic: EvaluationsSemantic = EvaluationsSemantic.execute_all,
    ) -> list[Decision]:
        checked = await self._check_approvals(requests)
        decisions = await self.inner.evaluations([r for r, _, _ in checked], semantic)
        finished = [
            await self._finish(request, decision, approval)
            for (request, approval, _), decision in zip(checked, decisions, strict=False)
        ]
        return await self._audited([c for _, _, c in checked], finished)

    def policy_version(self) -> str | None:
        return policy_version(self.inner)

    async def _audited(
        self, claimed: Sequence[ApprovalRecord | None], decisions: list[Decision]
    ) -> list[Decision]:
        """Record the re-evaluations among `decisions` (those whose request presented one
        of this store's approvals), each with an evaluation id its decision carries."""
        if not any(c is not None for c in claimed[: len(decisions)]):
            return decisions
        now = self._clock()
        version = self.policy_version()
        events = []
        out = list(decisions)
        for n, (approval, decision) in enumerate(zip(claimed, decisions, strict=False)):
            if approval is None:
                continue
            evaluation_id = (decision.context or {}).get("evaluation_id")
            if not isinstance(evaluation_id, str):  # a requestable denial has its own already
                evaluation_id = "eval_" + secrets.token_urlsafe(16)
            out[n] = Decision(
                decision.decision,
                {**(decision.context or {}), "evaluation_id": evaluation_id},
                requestable=decision.requestable,
            )
            events.append(
                audit_events.reevaluated(approval, evaluation_id, decision.decision, version, now)
            )
        try:
            await self._approvals.audit_append(events)
        except Exception as exc:  # an unaudited re-evaluation is no decision
            raise PDPError(f"the re-evaluation could not be audited: {type(exc).__name__}") from exc
        return out

    async def search_subject(self, request: SubjectSearchRequest) -> SearchResult:
        return await self.inner.search_subject(request)

    async def search_resource(self, request: ResourceSearchRequest) -> SearchResult:
        return await self.inner.search_resource(request)

    async def search_action(self, request: ActionSearchRequest) -> SearchResult:
        return await self.inner.search_action(request)

    # -- approvals in -----------------------------------------------------------------

    async def _check_approvals(self, requests: Sequence[EvaluationRequest]) -> list[_Checked]:
        claimed = [_claimed_id(r) for r in requests]
        ids = [i for i in claimed if i is not None]
        try:
            found = await self._approvals.approvals_get(ids) if ids else {}
        except Exception as exc:  # fail closed: no decision rather than a guess
            raise PDPError(f"approvals could not be read: {type(exc).__name__}") from exc
        now = self._clock()
        out: list[_Checked] = []
        for request, approval_id in zip(requests, claimed, strict=True):
            if request.context is None or "approval" not in request.context:
                out.append((request, None, None))
                continue
            known = found.get(approval_id) if approval_id is not None else None
            if known is not None and known.pdp != self.pdp_id:
                known = None  # another store's: nothing of this one to record
            approval = known
            if approval is not None and not self._applies(approval, request, now):
                approval = None
            context = {k: v for k, v in request.context.items() if k != "approval"}
            if approval is not None:
                context["approval"] = {
                    "id": approval.id,
                    "template": approval.template,
                    "approved_until": rfc3339(approval.approved_until),
                }
            out.append((request.model_copy(update={"context": context}), approval, known))
        return out

    def _applies(self, approval: ApprovalRecord, request: EvaluationRequest, now: float) -> bool:
        if approval.pdp != self.pdp_id or approval.revoked_at is not None:
            return False
        if approval.approved_until <= now:
            return False
        try:
            return request_binding_hash(request, approval.members) == approval.binding_hash
        except CanonicalizationError:
            return False

    # -- decisions out ----------------------------------------------------------------

    async def _finish(
        self, request: EvaluationRequest, decision: Decision, approval: ApprovalRecord | None
    ) -> Decision:
        if decision.decision:
            if approval is None:
                return decision
            used = {"id": approval.id, "approved_until": rfc3339(approval.approved_until)}
            return Decision(True, {**(decision.context or {}), "approval": used})
        if decision.requestable is None or not self._requestable:
            return decision
        return await self._requestable_denial(request, decision, decision.requestable)

    async def _requestable_denial(
        self, request: EvaluationRequest, decision: Decision, template: str
    ) -> Decision:
        now = int(self._clock())
        expires_at = now + self._lifetime
        evaluation_id = "eval_" + secrets.token_urlsafe(16)
        try:
            binding_hash = request_binding_hash(request, self._members)
        except CanonicalizationError:
            return decision  # cannot be bound (e.g. an integer beyond 2^53): a plain denial
        try:
            token = await self._tokens.issue(
                pdp=self.pdp_id,
                template=template,
                evaluation_id=evaluation_id,
                binding_hash=binding_hash,
                members=self._members,
                issued_at=now,
                expires_at=expires_at,
            )
        except Exception as exc:  # no signing key: better no decision than an unbound one
            raise PDPError(f"the denial could not be signed: {type(exc).__name__}") from exc
        context: JSONObject = {
            **(decision.context or {}),
            "evaluation_id": evaluation_id,
            "evaluated_at": rfc3339(now),
            "reason": APPROVAL_REQUIRED,
            "access_request": {
                "endpoint": self._endpoint,
                "template": template,
                "expires_at": rfc3339(expires_at),
                "binding_token": token,
                **(self._form_urls(self.pdp_id, template) if self._form_urls else {}),
            },
        }
        return Decision(False, context, requestable=template)


def _claimed_id(request: EvaluationRequest) -> str | None:
    approval = (request.context or {}).get("approval")
    if isinstance(approval, dict) and isinstance(approval.get("id"), str):
        return str(approval["id"])
    return None
