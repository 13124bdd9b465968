"""An approver's decision on the items of a task: what they asked for, checked, and the
items and approvals it produces.

An approved item gets `result = {"mode": "reevaluate", "approval": {"id", "approved_at",
"approved_until"}}` and an approval record bound to the item's subject (actor excluded),
resource, action and authorization-relevant context, which the PDP matches on re-evaluation.
`approved_until` is the approver's choice, at most `max_approval_seconds` ahead; without one
it is `default_approval_seconds` ahead, or the requester's earlier `requested_until`.
Who decided, when and why stays in the item for audit and is never shown to requesters.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ..settings import AccessRequestSettings
from ..store.contract import ApprovalRecord, TaskRecord
from .approvers import Approver
from .binding import binding_hash, bound_context, bound_subject
from .problems import BadRequest, InvalidTaskState
from .submission import requested_until
from .tasks import APPROVED, DENIED, PENDING
from .times import rfc3339

APPROVE = "approve"
DENY = "deny"
MAX_JUSTIFICATION = 2000


@dataclass(frozen=True)
class DecisionInput:
    decision: str
    items: list[int] | None
    justification: str | None
    approved_until: float | None

    def check(self) -> None:
        if self.decision not in (APPROVE, DENY):
            raise BadRequest('decision must be "approve" or "deny"')
        if self.items is not None and (
            not isinstance(self.items, list)
            or not self.items
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in self.items)
        ):
            raise BadRequest("items must be a non-empty array of item indexes")
        if self.justification is not None and (
            not isinstance(self.justification, str) or len(self.justification) > MAX_JUSTIFICATION
        ):
            raise BadRequest(f"justification must be a string of at most {MAX_JUSTIFICATION}")
        if self.approved_until is not None and self.decision != APPROVE:
            raise BadRequest("approved_until goes only with an approval")

    def chosen(self, task: TaskRecord) -> list[int]:
        if self.items is None:
            return [n for n, item in enumerate(task.items) if item["status"] == PENDING]
        for n in self.items:
            if not 0 <= n < len(task.items):
                raise BadRequest(f"the access request has no item {n}")
            if task.items[n]["status"] != PENDING:
                raise InvalidTaskState(f"item {n} is already {task.items[n]['status']}")
        return list(dict.fromkeys(self.items))


def decide_items(
    task: TaskRecord,
    chosen: list[int],
    approver: Approver,
    wanted: DecisionInput,
    settings: AccessRequestSettings,
    now: float,
) -> tuple[list[Any], list[Any]]:
    items: list[dict[str, Any]] = [dict(item) for item in task.items]
    approvals: list[ApprovalRecord] = []
    for n in chosen:
        item = items[n]
        item["decided_by"] = {"iss": approver.issuer, "sub": approver.sub}
        item["decided_at"] = rfc3339(now)
        if wanted.justification is not None:
            item["justification"] = wanted.justification
        if wanted.decision == DENY:
            item["status"] = DENIED
            continue
        until = _approved_until(task, item, wanted, settings, now)
        approval = _approval(task, n, item, now, until)
        approvals.append(approval)
        item["status"] = APPROVED
        item["result"] = {
            "mode": "reevaluate",
            "approval": {
                "id": approval.id,
                "approved_at": rfc3339(now),
                "approved_until": rfc3339(until),
            },
        }
    return items, approvals


def _approved_until(
    task: TaskRecord,
    item: dict[str, Any],
    wanted: DecisionInput,
    settings: AccessRequestSettings,
    now: float,
) -> float:
    latest = now + settings.max_approval_seconds
    if wanted.approved_until is not None:
        if not now < wanted.approved_until <= latest:
            raise BadRequest(
                f"approved_until must be in the future and at most "
                f"{settings.max_approval_seconds} s ahead"
            )
        return float(int(wanted.approved_until))
    until = now + settings.default_approval_seconds
    asked = requested_until(item.get("requested_access"), task.requested_access)
    if asked is not None and now < asked < until:
        until = asked
    return float(int(min(until, latest)))


def _approval(
    task: TaskRecord, n: int, item: dict[str, Any], now: float, until: float
) -> ApprovalRecord:
    members = item["denial"]["members"]
    return ApprovalRecord(
        id="apr_" + secrets.token_urlsafe(24),
        task_id=task.id,
        item=n,
        pdp=task.pdp,
        template=item["template"],
        members=members,
        binding_hash=binding_hash(
            task.subject, item["resource"], item["action"], task.context, members
        ),
        binding={
            "subject": bound_subject(task.subject),
            "resource": item["resource"],
            "action": item["action"],
            "context": bound_context(task.context, members),
        },
        approved_at=now,
        approved_until=until,
    )
