"""The bridge's own events, read from its audit trail: each entry that records something a
receiver may act on becomes one or more events (type, subject, members).

The audit trail is written in the transaction of every change it records, in one order, on
every replica: reading it is reading every change exactly once, whichever path made it (the
pages, the API, the command line, housekeeping, an event), without any of them knowing about
streams.

- `filed`, `approved` (and `emergency_approved`), `denied`, `expired`, `cancelled`: the
  bridge's `access-request-filed`, `-approved`, `-denied`, `-expired`, `-cancelled`, about
  the person (`sub_id` `opaque`, their id);
- `revoked`: `approval-revoked` about the person, and CAEP `session-revoked` for each access
  token issued under the approval (`complex`: the person as `user`, the token as `session`,
  a `jwt_id`);
- `subject_revoked`: CAEP `session-revoked` about the person, with the `txn` of the event
  that caused it (none when that event was seen before, by its `txn`: a relay stops there);
- `token_deactivated`: CAEP `token-claims-change` about the token (`jwt_id`), its `claims`
  what the policies still permit of it.

Events about an access request whose record was purged name the request (`opaque`, its id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..store.contract import AuditEntry, TaskRecord
from . import event_audit
from .event_types import (
    ACCESS_REQUEST_APPROVED,
    ACCESS_REQUEST_CANCELLED,
    ACCESS_REQUEST_DENIED,
    ACCESS_REQUEST_EXPIRED,
    ACCESS_REQUEST_FILED,
    APPROVAL_REVOKED,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
)
from .subject_identifiers import jwt_id, opaque


@dataclass(frozen=True)
class OutgoingEvent:
    event_type: str
    sub_id: dict[str, Any]
    event: dict[str, Any]
    txn: str


class Lookups(Protocol):
    async def task_get(self, task_id: str) -> TaskRecord | None: ...

    async def approval_token_ids(self, approval_id: str) -> list[tuple[str, float]]: ...


_REQUEST_EVENTS = {
    "filed": ACCESS_REQUEST_FILED,
    "approved": ACCESS_REQUEST_APPROVED,
    "emergency_approved": ACCESS_REQUEST_APPROVED,
    "denied": ACCESS_REQUEST_DENIED,
    "expired": ACCESS_REQUEST_EXPIRED,
    "cancelled": ACCESS_REQUEST_CANCELLED,
    "revoked": APPROVAL_REVOKED,
}
# What of each entry's data goes into the event (never who decided, nor a justification).
_MEMBERS = ("items", "item", "step", "approval_id", "approved_until")


async def events_of(entry: AuditEntry, issuer: str, lookups: Lookups) -> list[OutgoingEvent]:
    data = entry.data if isinstance(entry.data, dict) else {}
    txn = f"{issuer}#audit-{entry.seq}"
    stamp = int(entry.at)
    if entry.event in _REQUEST_EVENTS and entry.task_id is not None:
        task = await lookups.task_get(entry.task_id)
        subject = _subject(task, data)
        event: dict[str, Any] = {"event_timestamp": stamp, "access_request": entry.task_id}
        if subject is not None:
            event["subject"] = subject
        event.update({k: data[k] for k in _MEMBERS if data.get(k) is not None})
        if isinstance(event.get("approved_until"), float):
            event["approved_until"] = int(event["approved_until"])  # a NumericDate
        if entry.event == "emergency_approved":
            event["emergency"] = True
        if entry.event == "filed" and task is not None:
            event["items"] = [_pair(item) for item in task.items]
        sub_id = opaque(subject["id"]) if subject is not None else opaque(entry.task_id)
        out = [OutgoingEvent(_REQUEST_EVENTS[entry.event], sub_id, event, txn)]
        if entry.event == "revoked" and isinstance(data.get("approval_id"), str):
            for jti, _ in await lookups.approval_token_ids(data["approval_id"]):
                session = {"format": "complex", "user": sub_id, "session": jwt_id(issuer, jti)}
                caep = {"event_timestamp": stamp, "initiating_entity": "policy"}
                out.append(OutgoingEvent(SESSION_REVOKED, session, caep, txn))
        return out
    if entry.event == event_audit.SUBJECT_REVOKED and data.get("relay", True):
        subject = data.get("subject") or {}
        source = data.get("source") or {}
        caep = {"event_timestamp": stamp, "initiating_entity": "policy"}
        if isinstance(data.get("reason"), str):
            caep["reason_admin"] = {"en": data["reason"]}
        return [OutgoingEvent(SESSION_REVOKED, opaque(str(subject.get("id"))), caep,
                              str(source.get("txn") or txn))]  # fmt: skip
    if entry.event == event_audit.TOKEN_DEACTIVATED and isinstance(data.get("jti"), str):
        change = {"event_timestamp": stamp, "claims": data.get("remaining") or {}}
        return [OutgoingEvent(TOKEN_CLAIMS_CHANGE, jwt_id(issuer, data["jti"]), change, txn)]
    return []


def _subject(task: TaskRecord | None, data: dict[str, Any]) -> dict[str, str] | None:
    subject = task.subject if task is not None else data.get("subject")
    if not isinstance(subject, dict):
        return None
    kind, ident = subject.get("type"), subject.get("id")
    if not isinstance(kind, str) or not isinstance(ident, str):
        return None
    return {"type": kind, "id": ident}


def _pair(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": {"type": item["resource"]["type"], "id": item["resource"]["id"]},
        "action": item["action"]["name"],
        "template": item.get("template"),
    }
