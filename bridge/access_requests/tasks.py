"""Tasks and their items: the state machine of ARAP §9 and what callers are shown.

A task is stored with one item per (resource, action) pair, also when it was submitted as a
single request; `bundle` says which shape the caller sent and so which shape it reads back
(top-level `result`, or `task.items[]`). Item statuses start `pending` and change once; the
task status is the bundle aggregate of §9.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..store.contract import TaskRecord
from .steps import current_step
from .times import rfc3339

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
CANCELLED = "cancelled"
FAILED = "failed"
PARTIAL = "partial"
TERMINAL = frozenset({APPROVED, DENIED, EXPIRED, CANCELLED, FAILED, PARTIAL})
CALLBACK_EVENTS = TERMINAL

# Item members a requester never reads back (approver identities, audit, binding material).
_INTERNAL_ITEM_MEMBERS = (
    "template",
    "denial",
    "decided_by",
    "decided_at",
    "justification",
    "steps",
    "step",
    "step_started_at",
    "emergency",
)


def aggregate(statuses: Iterable[str]) -> str:
    """ARAP §9: any item pending → pending; one shared terminal status → it; else partial."""
    found = list(statuses)
    if not found or PENDING in found:
        return PENDING
    distinct = set(found)
    return distinct.pop() if len(distinct) == 1 else PARTIAL


@dataclass(frozen=True)
class TaskURLs:
    """Where a task's endpoints live (the service's public base URL for them)."""

    requests_url: str  # the access request endpoint: .../access/v1/requests
    approvals_url: str  # the approver API: .../access/v1/approvals

    def status(self, task_id: str) -> str:
        return f"{self.requests_url}/{task_id}"

    def cancel(self, task_id: str) -> str:
        return f"{self.requests_url}/{task_id}/cancel"

    def decision(self, task_id: str) -> str:
        return f"{self.approvals_url}/{task_id}"


@dataclass(frozen=True)
class ItemView:
    resource: dict[str, Any]
    action: dict[str, Any]
    status: str
    result: dict[str, Any] | None


@dataclass(frozen=True)
class TaskView:
    """A task as its requester sees it (ARAP §7/§8). `items` always lists every item (one
    for a single request), in submission order; `to_json` gives the ARAP body."""

    record: TaskRecord

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def expires_at(self) -> float:
        """When the handle stops working (pending: the approval deadline)."""
        return self.record.retain_until

    @property
    def items(self) -> list[ItemView]:
        return [
            ItemView(i["resource"], i["action"], i["status"], i.get("result"))
            for i in self.record.items
        ]

    def to_json(self, urls: TaskURLs) -> dict[str, Any]:
        task = self.record
        body: dict[str, Any] = {
            "id": task.id,
            "status": task.status,
            "status_endpoint": urls.status(task.id),
            "expires_at": rfc3339(task.retain_until),
        }
        if task.status == PENDING:
            waiting = next(i for i in task.items if i["status"] == PENDING)
            body["progress"] = progress(waiting)
            body["links"] = {"cancel": urls.cancel(task.id)}
        if task.bundle:
            body["items"] = [requester_item(item) for item in task.items]
        out: dict[str, Any] = {"task": body}
        if not task.bundle and task.status == APPROVED and "result" in task.items[0]:
            out["result"] = task.items[0]["result"]
        return out


def describe(item: dict[str, Any]) -> str:
    """An item in words: ARAP's `requested_access.description` (the RAR profile's words for
    what the token endpoint filed), else its action and resource."""
    access = item.get("requested_access")
    words = access.get("description") if isinstance(access, dict) else None
    if isinstance(words, str) and words.strip():
        return words.strip()
    resource = item.get("resource") or {}
    action = (item.get("action") or {}).get("name", "")
    return f"{action} {resource.get('type', '')} {resource.get('id', '')}".strip()


def progress(item: dict[str, Any]) -> dict[str, Any]:
    """ARAP §7 `progress` of a waiting item: its step (1-based), of how many, the step's
    name, and whose decision it awaits, named by the step (no approver is named to the
    requester)."""
    step = current_step(item)
    return {
        "current_step": step.number,
        "total_steps": step.total,
        "step_name": step.name,
        "awaiting": [step.name],
    }


def requester_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {"resource": item["resource"], "action": item["action"], "status": item["status"]}
    if "result" in item:
        out["result"] = item["result"]
    return out


def approver_json(task: TaskRecord, actionable: list[int], urls: TaskURLs) -> dict[str, Any]:
    """What an approver is shown: the whole request, and the items they may decide."""
    items = []
    for item in task.items:
        shown = {k: v for k, v in item.items() if k not in _INTERNAL_ITEM_MEMBERS}
        shown["template"] = item["template"]
        shown["description"] = describe(item)
        items.append(shown)
    body: dict[str, Any] = {
        "id": task.id,
        "status": task.status,
        "requester": task.requester,
        "subject": task.subject,
        "context": task.context,
        "items": items,
        "actionable_items": actionable,
        "created_at": rfc3339(task.created_at),
        "expires_at": rfc3339(task.expires_at),
        "decision_endpoint": urls.decision(task.id),
    }
    for name in ("requested_access", "client"):
        value = getattr(task, name)
        if value is not None:
            body[name] = value
    return body
