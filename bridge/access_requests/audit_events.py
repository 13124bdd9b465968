"""The audit trail's entries for access requests: one constructor per event, so every entry
of a kind has the same members (docs/approvals.md lists them).

`actor` says who acted: an approver's key (`Approver.key`, the JSON array of issuer, subject
type and id), a requester id (`pep:...`, `client:...`), a person cancelling their own request
(`person:` and the JSON array of subject type and id, e.g. `person:["user","alice"]`),
`operator` (the command line), `policy` (an emergency approved by policy) or `system`
(expiry, escalation, notifications).
"""

from __future__ import annotations

from typing import Any

from ..store.contract import ApprovalRecord, AuditEvent, TaskRecord

SYSTEM = "system"
OPERATOR = "operator"
POLICY = "policy"


def _pair(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": {"type": item["resource"]["type"], "id": item["resource"]["id"]},
        "action": item["action"]["name"],
        "template": item.get("template"),
    }


def filed(task: TaskRecord, policy_version: str | None) -> AuditEvent:
    data: dict[str, Any] = {
        "pdp": task.pdp,
        "policy_version": policy_version,
        "subject": {"type": task.subject.get("type"), "id": task.subject.get("id")},
        "items": [_pair(item) for item in task.items],
    }
    if task.client is not None:
        data["client"] = task.client
    if task.requested_access is not None:
        data["requested_access"] = task.requested_access
    return AuditEvent(task.created_at, "filed", task.id, task.requester, data)


def step_approved(
    task: TaskRecord,
    n: int,
    step: str,
    by: str,
    justification: str | None,
    version: str | None,
    now: float,
) -> AuditEvent:
    data = {"item": n, "step": step, "justification": justification, "policy_version": version}
    return AuditEvent(now, "step_approved", task.id, by, data)


def approved(
    task: TaskRecord,
    n: int,
    approval: ApprovalRecord,
    by: str,
    justification: str | None,
    version: str | None,
) -> AuditEvent:
    data = {
        "item": n,
        "approval_id": approval.id,
        "approved_until": approval.approved_until,
        "justification": justification,
        "policy_version": version,
    }
    return AuditEvent(approval.approved_at, "approved", task.id, by, data)


def denied(
    task: TaskRecord,
    n: int,
    step: str,
    by: str,
    justification: str | None,
    version: str | None,
    now: float,
) -> AuditEvent:
    data = {"item": n, "step": step, "justification": justification, "policy_version": version}
    return AuditEvent(now, "denied", task.id, by, data)


def cancelled(task: TaskRecord, by: str, now: float) -> AuditEvent:
    return AuditEvent(now, "cancelled", task.id, by, {"items": _pending(task)})


def expired(task: TaskRecord, now: float) -> AuditEvent:
    return AuditEvent(now, "expired", task.id, SYSTEM, {"items": _pending(task)})


def escalated(task: TaskRecord, n: int, step: str, now: float) -> AuditEvent:
    return AuditEvent(now, "escalated", task.id, SYSTEM, {"item": n, "step": step})


def emergency_approved(
    task: TaskRecord, n: int, approval: ApprovalRecord, version: str | None
) -> AuditEvent:
    data = {
        "item": n,
        "approval_id": approval.id,
        "approved_until": approval.approved_until,
        "policy_version": version,
    }
    return AuditEvent(approval.approved_at, "emergency_approved", task.id, POLICY, data)


def reviewed(task: TaskRecord, n: int, by: str, note: str | None, now: float) -> AuditEvent:
    return AuditEvent(now, "reviewed", task.id, by, {"item": n, "justification": note})


def revoked(approval: ApprovalRecord, by: str, reason: str | None, now: float) -> AuditEvent:
    data = {"approval_id": approval.id, "item": approval.item, "reason": reason}
    return AuditEvent(now, "revoked", approval.task_id, by, data)


def notified(
    task_id: str, recipient: str, channel: str, reason: str, step: int, now: float
) -> AuditEvent:
    data = {"recipient": recipient, "channel": channel, "reason": reason, "step": step + 1}
    return AuditEvent(now, "notified", task_id, SYSTEM, data)


def reevaluated(
    approval: ApprovalRecord,
    evaluation_id: str,
    decision: bool,
    version: str | None,
    now: float,
) -> AuditEvent:
    data = {
        "approval_id": approval.id,
        "item": approval.item,
        "evaluation_id": evaluation_id,
        "decision": decision,
        "policy_version": version,
    }
    return AuditEvent(now, "reevaluated", approval.task_id, SYSTEM, data)


def _pending(task: TaskRecord) -> list[int]:
    return [n for n, item in enumerate(task.items) if item["status"] == "pending"]
