"""Deciding a deferred request again once its access request has ended (ARAP §11, AROP §5):
the original evaluations, each denied one with its item's approval copied unchanged into
`context.approval`. It runs when the access request ends (to store the outcome and ping the
client) and once more at redemption (the approval may have been revoked, the policies may
have changed), so a token is only ever issued under the policies as they are then.
"""

from __future__ import annotations

from typing import Any

from ..access_requests.filing import AccessRequestFiling
from ..access_requests.lifecycle import TASK_TERMINAL
from ..access_requests.times import parse_rfc3339
from ..authzen.models import Decision, EvaluationRequest, EvaluationsSemantic
from ..authzen.pdp import PDP
from ..outbox import Delivered, Outcome
from ..store.contract import OutboxRow
from .models import Resolution
from .service import DeferralService

Decided = tuple[list[EvaluationRequest], list[Decision]]


class Reevaluation:
    def __init__(self, pdp: PDP, filing: AccessRequestFiling, deferrals: DeferralService) -> None:
        self._pdp = pdp
        self._filing = filing
        self._deferrals = deferrals

    async def on_task_terminal(self, row: OutboxRow) -> Outcome:
        """Outbox handler for `TASK_TERMINAL` rows (payload: the task id), which the access
        request side queues when a task ends: settle every deferral waiting on it."""
        task_id = row.payload.decode("utf-8")
        await self._deferrals.resolve_task(task_id, self.decide)
        return Delivered()

    async def decide(self, snapshot: dict[str, Any], task_id: str | None) -> Resolution | None:
        """The outcome of a deferral whose access request `task_id` ended: its denial, or
        the original evaluations decided again with the approvals. None while the request
        is still pending (its end decides). Without an access request (a CIBA request that
        needed no approver), the evaluations decided again as they are."""
        if task_id is None:
            ok, until = await self.reevaluate(snapshot, [])
            return Resolution(ok=ok, approved_until=until)
        outcome = await self._filing.outcome(task_id)
        if outcome.status == "pending":
            return None
        if outcome.status != "approved":
            return Resolution(ok=False)
        approvals = outcome.approvals
        ok, until = await self.reevaluate(snapshot, approvals)
        return Resolution(ok=ok, approved_until=until, approvals=approvals)

    async def reevaluate(
        self, snapshot: dict[str, Any], approvals: list[dict[str, Any]]
    ) -> tuple[bool, float | None]:
        """(permitted, the earliest `approved_until` of the approvals and decisions)."""
        ok, until, _ = await self.redecide(snapshot, approvals)
        return ok, until

    async def redecide(
        self, snapshot: dict[str, Any], approvals: list[dict[str, Any]]
    ) -> tuple[bool, float | None, Decided]:
        """`reevaluate`, with the evaluations asked and their decisions: what a token issued
        under the token issuance mapping takes its shape from (`context.issuance`)."""
        evaluations = [EvaluationRequest.model_validate(e) for e in snapshot["evaluations"]]
        denied: list[int] = snapshot["denied"]
        if len(approvals) != len(denied) or not all(a.get("id") for a in approvals):
            return False, None, ([], [])
        for n, approval in zip(denied, approvals, strict=True):
            request = evaluations[n]
            context = {**(request.context or {}), "approval": approval}
            evaluations[n] = request.model_copy(update={"context": context})
        decisions = await self._pdp.evaluations(evaluations, EvaluationsSemantic.execute_all)
        if not decisions or not all(d.decision for d in decisions):
            return False, None, ([], [])
        ends = [parse_rfc3339(a.get("approved_until")) for a in approvals]
        ends += [
            parse_rfc3339(((d.context or {}).get("approval") or {}).get("approved_until"))
            for d in decisions
        ]
        known = [end for end in ends if end is not None]
        return True, (min(known) if known else None), (evaluations, decisions)


__all__ = ["TASK_TERMINAL", "Reevaluation"]
