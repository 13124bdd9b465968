"""The part of the access request service every operation shares: reading a task as a
given caller may see it, and changing it by compare-and-set.

A change is computed from the task as read and written only if nobody changed the task in
between (`version`); otherwise it is computed again from the new state, so two approvers
deciding at once leave exactly one outcome. A pending task past `expires_at` is expired
when it is next read (and by `expire_due`, which the app may call periodically). Reaching a
terminal status queues, in the same transaction, the `task_terminal` row (payload: the task
id) that the deferral service consumes, and the ARAP callback when one was asked for. Every
change carries its audit entries (`audit_events`), written in that same transaction.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..store.contract import (
    ApprovalRecord,
    AuditEvent,
    AuditStore,
    TaskChange,
    TaskRecord,
    TaskStore,
)
from . import audit_events, callbacks
from .problems import InvalidTaskState, TaskExpired, UnknownTask
from .tasks import EXPIRED, PENDING, TaskView, aggregate

TASK_TERMINAL = "task_terminal"
# A decided task's handle stays readable this long after the outcome (ARAP §6.1, §8).
RETENTION_SECONDS = 86_400
# Gone handles are remembered (410 rather than 404) this long, then purged.
PURGE_AFTER_SECONDS = 7 * 86_400
_ATTEMPTS = 8
_SWEEP_BATCH = 100
_SWEEP_BATCHES = 50  # a sweep ends even if some task keeps refusing to expire

Item = dict[str, object]


class ServiceStore(TaskStore, AuditStore, Protocol):
    """What the access request service keeps: its tasks and their audit trail."""


@dataclass(frozen=True)
class Transition:
    """What a change makes of a task: its new items, and what goes with them."""

    items: list[Item]
    approvals: list[ApprovalRecord] = field(default_factory=list)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)


Compute = Callable[[TaskRecord, float], Awaitable[Transition]]


class TaskLifecycle:
    def __init__(self, store: ServiceStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def fetch(self, task_id: str, requester: str | None) -> TaskRecord:
        """The task, expired if due; `UnknownTask` when it does not exist or belongs to
        another requester (None: any), `TaskExpired` once its handle has lapsed."""
        task = await self.store.task_get(task_id)
        if task is None or (requester is not None and task.requester != requester):
            raise UnknownTask("no such access request")
        now = self.clock()
        if task.status == PENDING and task.expires_at <= now:
            task = await self._expire(task)
        if task.retain_until <= now:
            raise TaskExpired("the access request handle has expired")
        return task

    async def transition(self, task_id: str, requester: str | None, compute: Compute) -> TaskView:
        """Apply `compute` (new items, approvals to grant) to a pending task, by CAS."""
        for _ in range(_ATTEMPTS):
            task = await self.fetch(task_id, requester)
            if task.status != PENDING:
                raise InvalidTaskState(f"the access request is already {task.status}")
            now = self.clock()
            updated = await self._write(task, await compute(task, now), now)
            if updated is not None:
                return TaskView(updated)
        raise InvalidTaskState("the access request is changing; try again")

    async def expire_due(self, limit: int = 100) -> int:
        """Expire pending tasks past `expires_at`; how many were looked at."""
        due = await self.store.tasks_past_expiry(self.clock(), limit)
        for task in due:
            await self._expire(task)
        return len(due)

    async def sweep(self) -> None:
        """Periodic housekeeping: expire what is due, purge what no longer works."""
        for _ in range(_SWEEP_BATCHES):
            if await self.expire_due(_SWEEP_BATCH) < _SWEEP_BATCH:
                break
        await self.store.tasks_purge(self.clock(), PURGE_AFTER_SECONDS)

    async def _expire(self, task: TaskRecord) -> TaskRecord:
        for _ in range(_ATTEMPTS):
            if task.status != PENDING:
                return task
            now = self.clock()
            items = [{**i, "status": EXPIRED} if i["status"] == PENDING else i for i in task.items]
            expired = audit_events.expired(task, now)
            updated = await self._write(task, Transition(items, audit=[expired]), now)
            if updated is not None:
                return updated
            found = await self.store.task_get(task.id)
            if found is None:
                raise UnknownTask("no such access request")
            task = found
        return task

    async def _write(
        self, task: TaskRecord, change: Transition, now: float, *, only_pending: bool = True
    ) -> TaskRecord | None:
        items = change.items
        status = aggregate(str(i["status"]) for i in items)
        retain_until = task.retain_until if task.status != PENDING else task.expires_at
        outbox = list(change.outbox)
        if status != PENDING and task.status == PENDING:
            retain_until = max(task.expires_at, min(now, task.expires_at) + RETENTION_SECONDS)
            outbox.append((TASK_TERMINAL, task.id.encode("utf-8")))
            if callbacks.wants(task.callback, status):
                outbox.append((callbacks.KIND, callbacks.callback_payload(task.id, status)))
        record = TaskChange(
            task_id=task.id,
            expected_version=task.version,
            status=status,
            items=items,
            updated_at=now,
            retain_until=retain_until,
            approvals=change.approvals,
            outbox=outbox,
            audit=change.audit,
            only_pending=only_pending,
        )
        if not await self.store.task_update(record):
            return None
        return dataclasses.replace(
            task,
            status=status,
            items=items,
            updated_at=now,
            retain_until=retain_until,
            version=task.version + 1,
        )
