"""The audit trail's entries for what events do, beside those of access requests
(`access_requests.audit_events`, whose `approved`, `denied` and `revoked` an event's change
writes with its `source`). docs/events.md lists their members.

These stand for no access request (`task_id` is null but for `event_refused` and
`opened_by_event`): a subject's revocation, the facts an event re-evaluated a subject with,
a refused decision, a token continuous evaluation found no longer permitted. The
transmitter's fan-out reads the trail, so these are also what the bridge's own
`session-revoked` and `token-claims-change` events are made from.
"""

from __future__ import annotations

from typing import Any

from ..store.contract import AuditEvent
from .subject_identifiers import NamedSubject

POLICY = "policy"

SUBJECT_REVOKED = "subject_revoked"
SUBJECT_REEVALUATED = "subject_reevaluated"
EVENT_REFUSED = "event_refused"
OPENED_BY_EVENT = "opened_by_event"
TOKEN_DEACTIVATED = "token_deactivated"


def subject_revoked(
    subject: NamedSubject,
    by: str,
    source: dict[str, Any],
    reason: str | None,
    relay: bool,
    now: float,
) -> AuditEvent:
    data = {"subject": subject.as_json(), "reason": reason, "source": source, "relay": relay}
    return AuditEvent(now, SUBJECT_REVOKED, None, by, data)


def subject_reevaluated(
    subject: NamedSubject,
    by: str,
    source: dict[str, Any],
    facts: dict[str, Any],
    outcome: dict[str, Any],
    now: float,
) -> AuditEvent:
    data = {"subject": subject.as_json(), "facts": facts, "source": source, **outcome}
    return AuditEvent(now, SUBJECT_REEVALUATED, None, by, data)


def event_refused(
    task_id: str | None, by: str, source: dict[str, Any], reason: str, now: float
) -> AuditEvent:
    return AuditEvent(now, EVENT_REFUSED, task_id, by, {"reason": reason, "source": source})


def opened_by_event(task_id: str, by: str, source: dict[str, Any], now: float) -> AuditEvent:
    return AuditEvent(now, OPENED_BY_EVENT, task_id, by, {"source": source})


def token_deactivated(
    claims: dict[str, Any], version: str | None, remaining: dict[str, Any], now: float
) -> AuditEvent:
    data = {
        "jti": claims.get("jti"),
        "sub": claims.get("sub"),
        "client_id": claims.get("client_id"),
        "policy_version": version,
        "remaining": remaining,
    }
    return AuditEvent(now, TOKEN_DEACTIVATED, None, POLICY, data)
