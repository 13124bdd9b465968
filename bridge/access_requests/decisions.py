"""An approver's decision on the items of a task: what they asked for, checked, and the
items and approvals it produces.

An item waits on the current step of its template (`steps`); an approval counts there, and
moves the item to its next step, or approves it once the last step has its approvals. A
denial at any step denies the item. An approved item gets
`result = {"mode": "reevaluate", "approval": {"id", "approved_at", "approved_until"}}` and
an approval record bound to the item's subject (actor excluded),
resource, action and authorization-relevant context, which the PDP matches on re-evaluation.
`approved_until` is the earliest any approver of the item chose, at most
`max_approval_seconds` ahead; without one it is `default_approval_seconds` ahead, or the
requester's earlier `requested_until`.
Who decided, when and why stays in the item for audit and is never shown to requesters.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ..settings import AccessRequestSettings
from ..store.contract import ApprovalRecord, TaskRecord
from . import audit_events
from .approvers import Approver
from .binding import binding_hash, bound_context, bound_subject
from .lifecycle import Transition
from .notices import DECIDE, ApprovalNeeded
from .problems import BadRequest, InvalidTaskState
from .steps import approve_step, chosen_until, current_step
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

    def check_until(self, settings: AccessRequestSettings, now: float) -> None:
        latest = now + settings.max_approval_seconds
        if self.approved_until is not None and not now < self.approved_until <= latest:
            raise BadRequest(
                f"approved_until must be in the future and at most "
                f"{settings.max_approval_seconds} s ahead"
            )

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
    version: str | None,
) -> Transition:
    """The items after `approver`'s decision on the `chosen` ones (each at its current step),
    with the approvals granted, the notices for steps that now wait, and the audit."""
    items: list[dict[str, Any]] = [dict(item) for item in task.items]
    out = Transition(items)
    for n in chosen:
        step = current_step(items[n])
        if wanted.decision == DENY:
            items[n] = {**_decided(items[n], approver, wanted, now), "status": DENIED}
            out.audit.append(
                audit_events.denied(
                    task, n, step.name, approver.key, wanted.justification, version, now
                )
            )
            continue
        counted = approve_step(
            items[n], approver.key, now, wanted.approved_until, wanted.justification
        )
        items[n] = counted.item
        if not counted.finished:
            out.audit.append(
                audit_events.step_approved(
                    task, n, step.name, approver.key, wanted.justification, version, now
                )
            )
            if counted.advanced:
                next_step = current_step(counted.item)
                notice = ApprovalNeeded(task.id, DECIDE, items[n]["template"], next_step.index, n)
                out.outbox.append(notice.outbox_row())
            continue
        until = approved_until(task, items[n], chosen_until(items[n]), settings, now)
        approval = new_approval(task, n, items[n], now, until, approver.key)
        items[n] = approved_item(_decided(items[n], approver, wanted, now), approval, now)
        out.approvals.append(approval)
        out.audit.append(
            audit_events.approved(task, n, approval, approver.key, wanted.justification, version)
        )
    return out


def _decided(
    item: dict[str, Any], approver: Approver, wanted: DecisionInput, now: float
) -> dict[str, Any]:
    decided_by = {"iss": approver.issuer, "sub": approver.sub, "key": approver.key}
    out = {**item, "decided_by": decided_by}
    out["decided_at"] = rfc3339(now)
    if wanted.justification is not None:
        out["justification"] = wanted.justification
    return out


def approved_item(item: dict[str, Any], approval: ApprovalRecord, now: float) -> dict[str, Any]:
    return {
        **item,
        "status": APPROVED,
        "result": {
            "mode": "reevaluate",
            "approval": {
                "id": approval.id,
                "approved_at": rfc3339(now),
                "approved_until": rfc3339(approval.approved_until),
            },
        },
    }


def approved_until(
    task: TaskRecord,
    item: dict[str, Any],
    chosen: float | None,
    settings: AccessRequestSettings,
    now: float,
) -> float:
    """The approval's end: what the approvers chose (the earliest), else the default or the
    requester's earlier `requested_until`; never beyond `max_approval_seconds`."""
    latest = now + settings.max_approval_seconds
    if chosen is not None:
        if not now < chosen:
            raise BadRequest("an approver's approved_until has passed: decide again")
        return float(int(min(chosen, latest)))
    until = now + settings.default_approval_seconds
    asked = requested_until(item.get("requested_access"), task.requested_access)
    if asked is not None and now < asked < until:
        until = asked
    return float(int(min(until, latest)))


def new_approval(
    task: TaskRecord, n: int, item: dict[str, Any], now: float, until: float, by: str
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
        approved_by=by,
    )
