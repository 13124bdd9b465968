"""Emergency requests (ARAP `requested_access.emergency`): approved at once by policy, for a
short while, then reviewed by the approvers.

A template that allows it names `emergency_approval_seconds`. When a request says it is an
emergency, the bridge asks the store's PDP `approve_emergency` with the person (or system)
whose access is requested as the principal, on the access request as it asks for
`approve`. A permit approves the item at filing, with `approved_until` at most
`emergency_approval_seconds` ahead (earlier when the requester asked for less), and tells
the template's approvers to review it (`emergency_review` notices). The review is an
approver confirming the access (`ApproverActions.review`) or revoking it.
"""

from __future__ import annotations

from typing import Any

from ..settings import AccessRequestSettings
from ..store.contract import TaskRecord
from . import audit_events
from .approvers import EMERGENCY_ACTION, Approver, ApproverPolicy, Ask
from .decisions import approved_item, new_approval
from .lifecycle import Transition
from .notices import EMERGENCY_REVIEW, ApprovalNeeded
from .steps import current_step
from .submission import requested_until
from .templates import Template

REVIEW_PENDING = "pending"
REVIEW_DONE = "done"


def asks_emergency(task: TaskRecord, item: dict[str, Any]) -> bool:
    for access in (item.get("requested_access"), task.requested_access):
        if isinstance(access, dict) and "emergency" in access:
            return access["emergency"] is True
    return False


def awaiting_review(item: dict[str, Any]) -> bool:
    emergency = item.get("emergency")
    return isinstance(emergency, dict) and emergency.get("review") == REVIEW_PENDING


class Emergencies:
    def __init__(self, approvers: ApproverPolicy, settings: AccessRequestSettings) -> None:
        self._approvers = approvers
        self._settings = settings

    async def at_filing(
        self, task: TaskRecord, templates: dict[str, Template], now: float
    ) -> Transition:
        """The new task's items after the emergency approvals policy grants (none unless
        the request is an emergency and its template allows them)."""
        items = [dict(item) for item in task.items]
        out = Transition(items)
        wanted = [
            n
            for n, item in enumerate(items)
            if asks_emergency(task, item) and templates[item["template"]].emergency_approval_seconds
        ]
        if not wanted:
            return out
        subject = task.subject if isinstance(task.subject, dict) else {}
        principal = Approver("", str(subject.get("type", "")), str(subject.get("id", "")))
        asks = {
            items[n]["template"]: Ask(
                task, items[n]["template"], current_step(items[n]).name, EMERGENCY_ACTION
            )
            for n in wanted
        }
        answers = await self._approvers.allowed(principal, asks.values())
        permitted = {t for t, ok in zip(asks, answers, strict=True) if ok}
        version = self._approvers.version(task.pdp)
        told: set[str] = set()
        for n in wanted:
            template = templates[items[n]["template"]]
            if template.name not in permitted:
                continue
            assert template.emergency_approval_seconds is not None
            until = now + min(
                template.emergency_approval_seconds, self._settings.max_approval_seconds
            )
            asked = requested_until(items[n].get("requested_access"), task.requested_access)
            if asked is not None and now < asked < until:
                until = asked
            approval = new_approval(task, n, items[n], now, float(int(until)), audit_events.POLICY)
            items[n] = {
                **approved_item(items[n], approval, now),
                "emergency": {"approved_at": now, "review": REVIEW_PENDING},
            }
            out.approvals.append(approval)
            out.audit.append(audit_events.emergency_approved(task, n, approval, version))
            if template.name not in told:
                told.add(template.name)
                notice = ApprovalNeeded(task.id, EMERGENCY_REVIEW, template.name, 0, n)
                out.outbox.append(notice.outbox_row())
        return out
