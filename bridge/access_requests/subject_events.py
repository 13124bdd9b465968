"""What other systems' events (`bridge.events`) do to access requests, beside a decision taken
through `AccessRequestService.decide` like any approver's: a subject's pending requests and
approvals in force found, pending items that the policies now plainly deny denied, approvals
the policies no longer uphold revoked, and requests nobody waits on any more cancelled.

Each is one compare-and-set or one transaction, as the approvers' own actions are, and each
audit entry names who acted (the transmitter, as an approver key) and `source`: the event
the change came in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..store.contract import ApprovalRecord, TaskRecord, subject_key
from . import audit_events
from .approvers import Approver
from .approving import with_source
from .lifecycle import Transition
from .problems import InvalidTaskState, TaskExpired, UnknownTask
from .service import AccessRequestService
from .steps import current_step
from .tasks import DENIED, PENDING, TaskView
from .times import rfc3339

log = logging.getLogger("bridge.access_requests")

# A subject's requests looked through, newest first.
MAX_TASKS = 200


class SubjectEvents:
    def __init__(self, service: AccessRequestService) -> None:
        self.service = service

    async def pending_of(self, subject: Mapping[str, Any]) -> list[TaskRecord]:
        """The subject's pending access requests (the newest `MAX_TASKS` of its requests)."""
        key = subject_key(dict(subject))
        tasks = await self.service.store.tasks_of_subject(key, None, MAX_TASKS)
        now = self.service.clock()
        return [t for t in tasks if t.status == PENDING and t.expires_at > now]

    async def deny_items(
        self,
        task_id: str,
        items: Sequence[int],
        by: Approver,
        reason: str,
        source: dict[str, Any],
    ) -> TaskView | None:
        """Deny the given items that are still pending, at the step each waits on; None when
        none is (decided meanwhile, or the request ended)."""

        async def compute(task: TaskRecord, now: float) -> Transition:
            changed: list[dict[str, Any]] = [dict(item) for item in task.items]
            audit = []
            version = self.service.approvers.version(task.pdp)
            for n in items:
                if not 0 <= n < len(changed) or changed[n]["status"] != PENDING:
                    continue
                step = current_step(changed[n]).name
                changed[n] = {
                    **changed[n],
                    "status": DENIED,
                    "decided_by": {"iss": by.issuer, "sub": by.sub, "key": by.key},
                    "decided_at": rfc3339(now),
                    "justification": reason,
                }
                audit.append(audit_events.denied(task, n, step, by.key, reason, version, now))
            if not audit:
                raise InvalidTaskState("nothing of it is pending any more")
            return with_source(Transition(changed, audit=audit), source)

        try:
            return await self.service.transition(task_id, None, compute)
        except (InvalidTaskState, UnknownTask, TaskExpired):
            return None

    async def revoke(
        self, approval: ApprovalRecord, by: Approver, reason: str, source: dict[str, Any]
    ) -> bool:
        """Revoke an approval in force (and the access tokens issued under it); False when it
        was revoked meanwhile."""
        now = self.service.clock()
        event = audit_events.revoked(approval, by.key, reason, now)
        entry = replace(event, data={**event.data, "source": source})
        return await self.service.store.approval_revoke(approval.id, now, [entry])

    async def abandon(self, task_id: str, by: Approver) -> None:
        """Cancel a request filed by the token endpoint whose deferrals all ended: nobody
        waits for its outcome any more (as when a client cancels its last deferral)."""
        try:
            task = await self.service.task(task_id)
            if task.status == PENDING:
                await self.service.cancel(task_id, task.record.requester, by=by.key)
        except (InvalidTaskState, UnknownTask, TaskExpired):
            return
        log.info("access request %s cancelled: nobody waits for it any more", task_id)
