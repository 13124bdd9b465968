"""The bridge's own event `urn:authzen-bridge:event-type:access-request-decision`: another
system (an approval tool, a ticketing system, an on-call pager) says "access request X is
approved, or denied, by Y, with this justification".

    sub_id: {"format": "opaque", "id": "<the access request's id>"}
    event:  {"decision": "approve" | "deny", "decided_by"?: "<who, at the transmitter>",
             "justification"?: "...", "items"?: [0, ...], "approved_until"?: <NumericDate>}

The decision goes through the approval service like an approver's (`decide`): the
transmitter is the approver, `{"type": "transmitter", "id": <its name>}`, and the policies
decide whether it may (`approve` on the `AccessRequest`, at the step each item waits on), so
"the on-call pager may approve emergency requests for production databases" is one Cedar
policy. Its audit entries carry the event as `source` (with `decided_by`). A decision the
policies do not allow is refused (`access_denied`) and recorded (`event_refused`); so is one
the request can no longer take (unknown, decided, expired: `invalid_request`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..access_requests.problems import (
    AccessRequestProblem,
    BadRequest,
    Forbidden,
    InvalidTaskState,
    TaskExpired,
    UnknownTask,
)
from ..access_requests.service import AccessRequestService
from ..store.contract import AuditStore
from . import event_audit
from .incoming import Incoming
from .set_errors import AccessDenied, InvalidRequest, SETError

log = logging.getLogger("bridge.events")

MAX_DECIDED_BY = 200
MAX_ITEMS = 100


def task_id_of(incoming: Incoming) -> str:
    sub_id = incoming.event.sub_id or {}
    task_id = sub_id.get("id") if sub_id.get("format") == "opaque" else None
    if not isinstance(task_id, str) or not task_id.startswith("arq_") or len(task_id) > 200:
        raise InvalidRequest('sub_id must be {"format": "opaque", "id": <an access request id>}')
    return task_id


class DecideRequest:
    def __init__(
        self, service: AccessRequestService, audit: AuditStore, clock: Callable[[], float]
    ) -> None:
        self._service = service
        self._audit = audit
        self._clock = clock

    def check(self, incoming: Incoming) -> None:
        """The event conforms to its definition (before its `jti` is taken)."""
        task_id_of(incoming)
        event = incoming.event.event
        if event.get("decision") not in ("approve", "deny"):
            raise InvalidRequest('decision must be "approve" or "deny"')
        decided_by = event.get("decided_by")
        if decided_by is not None and (
            not isinstance(decided_by, str) or not 0 < len(decided_by) <= MAX_DECIDED_BY
        ):
            raise InvalidRequest(f"decided_by must be a string of 1 to {MAX_DECIDED_BY}")
        items = event.get("items")
        if items is not None and (not isinstance(items, list) or len(items) > MAX_ITEMS):
            raise InvalidRequest(f"items must be an array of at most {MAX_ITEMS} indexes")
        until = event.get("approved_until")
        if until is not None and (not isinstance(until, int) or isinstance(until, bool)):
            raise InvalidRequest("approved_until must be a NumericDate")

    async def __call__(self, incoming: Incoming) -> None:
        task_id = task_id_of(incoming)
        event = incoming.event.event
        source: dict[str, Any] = dict(incoming.source)
        if isinstance(event.get("decided_by"), str):
            source["decided_by"] = event["decided_by"]
        until = event.get("approved_until")
        try:
            view = await self._service.decide(
                task_id,
                incoming.approver,
                str(event["decision"]),
                event.get("items"),
                event.get("justification"),
                float(until) if isinstance(until, int) else None,
                source=source,
            )
        except AccessRequestProblem as problem:
            refusal = _refusal(problem)
            await self._audit.audit_append(
                [
                    event_audit.event_refused(
                        task_id, incoming.approver.key, source, refusal.description, self._clock()
                    )
                ]
            )
            log.warning(
                "a decision on %s from %s was refused: %s",
                task_id,
                incoming.transmitter.name,
                refusal.description,
            )
            raise refusal from None
        log.info(
            "access request %s: %s by transmitter %s, now %s",
            task_id,
            event["decision"],
            incoming.transmitter.name,
            view.status,
        )


def _refusal(problem: AccessRequestProblem) -> SETError:
    if isinstance(problem, Forbidden):
        return AccessDenied(f"the policies do not let this transmitter decide it: {problem}")
    if isinstance(problem, UnknownTask | TaskExpired):
        return InvalidRequest("no such access request")
    if isinstance(problem, InvalidTaskState):
        return InvalidRequest(f"the access request cannot take this decision: {problem}")
    if isinstance(problem, BadRequest):
        return InvalidRequest(str(problem))
    return InvalidRequest(f"the decision was refused: {problem}")
