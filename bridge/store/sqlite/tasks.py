"""The access request tables on SQLite (records and rules: `store.contract.access_requests`)."""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..columns import fields_of, row_of
from ..contract.access_requests import (
    ApprovalRecord,
    BindingReused,
    IdempotencyConflict,
    IdempotencyRecord,
    TaskChange,
    TaskRecord,
    subject_key,
)
from ..contract.audit import AuditEvent
from .approvals import DELETE_EXPIRED_TIES, ApprovalTables
from .audit import AuditTables
from .connection import SQLiteBase, transaction
from .outbox import OutboxTables

_TASK_JSON = frozenset({"subject", "context", "items", "requested_access", "callback", "client"})
_TASK_COLUMNS = ", ".join(f.name for f in fields(TaskRecord))

# The record's columns, and the key a person's own requests are found by.
INSERT_TASK = (
    f"INSERT INTO access_requests ({_TASK_COLUMNS}, subject_key) "
    f"VALUES ({', '.join('?' * (len(fields(TaskRecord)) + 1))})"
)
# The compare-and-set: pending at the expected version, or (a decided task's items changed)
# at the expected version in whatever status.
UPDATE_PENDING_TASK = (
    "UPDATE access_requests SET status = ?, items = ?, updated_at = ?, retain_until = ?, "
    "version = version + 1 WHERE id = ? AND status = 'pending' AND version = ?"
)
UPDATE_TASK = (
    "UPDATE access_requests SET status = ?, items = ?, updated_at = ?, retain_until = ?, "
    "version = version + 1 WHERE id = ? AND version = ?"
)
# Housekeeping and the inbox; each is answered from an index (tests/store/test_plans.py).
SELECT_PENDING = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "ORDER BY created_at LIMIT ?"
)
SELECT_PAST_EXPIRY = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "AND expires_at <= ? ORDER BY expires_at LIMIT ?"
)
# Pages, newest first: of any status, of one status (a page of several statuses merges one
# page of each, every one read in index order), of one subject. Without a `before` the
# bound is +infinity, so the statement and its plan stay the same.
SELECT_RECENT = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE created_at < ? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
SELECT_RECENT_OF_STATUS = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = ? AND created_at < ? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
SELECT_OF_SUBJECT = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE subject_key = ? AND created_at < ? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
DELETE_DECIDED = "DELETE FROM access_requests WHERE status != 'pending' AND retain_until < ?"
DELETE_OLD_APPROVALS = "DELETE FROM access_request_approvals WHERE approved_until < ?"
DELETE_IDLE_IDEMPOTENCY = "DELETE FROM access_request_idempotency WHERE keep_until < ?"
DELETE_SPENT_BINDINGS = "DELETE FROM access_request_bindings WHERE expires_at < ?"
COUNT_CLAIMED_BINDINGS = "SELECT COUNT(*) FROM access_request_bindings WHERE task_id = ?"


class TaskTables(SQLiteBase):
    """Mixin of the access request tables; the store must also mix in `ApprovalTables`,
    `OutboxTables` and `AuditTables`."""

    async def task_insert(
        self,
        task: TaskRecord,
        idempotency: IdempotencyRecord | None,
        binding_jtis: Sequence[tuple[str, float]],
        *,
        outbox: Sequence[tuple[str, bytes]] = (),
        audit: Sequence[AuditEvent] = (),
        approvals: Sequence[ApprovalRecord] = (),
    ) -> tuple[TaskRecord, bool]:
        """Store a new task, or return the one an equal earlier submission made (False).

        Raises `IdempotencyConflict` (same key, other body) or `BindingReused`; what goes
        with a new task is written only with it."""

        def work() -> tuple[TaskRecord, bool]:
            with transaction(self.db):
                if idempotency is not None:
                    earlier = self._idempotency(
                        idempotency.requester, idempotency.key, task.created_at
                    )
                    if earlier is not None:
                        if earlier.body_hash != idempotency.body_hash:
                            raise IdempotencyConflict(earlier.task_id)
                        found = self._task(earlier.task_id)
                        if found is not None:
                            return found, False
                # A spent jti stays spent until the denial it bound can no longer be used.
                self.db.executemany(
                    "INSERT INTO access_request_bindings VALUES (?, ?, ?) ON CONFLICT (jti) "
                    "DO UPDATE SET task_id = excluded.task_id, expires_at = excluded.expires_at "
                    "WHERE access_request_bindings.expires_at < ?",
                    [(jti, task.id, exp, task.created_at) for jti, exp in binding_jtis],
                )
                claimed = self.db.execute(COUNT_CLAIMED_BINDINGS, (task.id,)).fetchone()[0]
                if claimed != len({jti for jti, _ in binding_jtis}):
                    raise BindingReused()  # leaving the transaction rolls everything back
                self.db.execute(INSERT_TASK, (*row_of(task, _TASK_JSON), subject_key(task.subject)))
                if idempotency is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO access_request_idempotency VALUES (?, ?, ?, ?, ?)",
                        (
                            idempotency.requester,
                            idempotency.key,
                            idempotency.body_hash,
                            idempotency.task_id,
                            idempotency.keep_until,
                        ),
                    )
                ApprovalTables.approvals_insert(self.db, approvals)
                for kind, payload in outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, task.created_at)
                AuditTables.audit_write(self.db, audit)
            return task, True

        return await self._run(work)

    async def idempotency_find(
        self, requester: str, key: str, now: float
    ) -> IdempotencyRecord | None:
        return await self._run(lambda: self._idempotency(requester, key, now))

    def _idempotency(self, requester: str, key: str, now: float) -> IdempotencyRecord | None:
        row = self.db.execute(
            "SELECT requester, key, body_hash, task_id, keep_until FROM access_request_idempotency "
            "WHERE requester = ? AND key = ? AND keep_until > ?",
            (requester, key, now),
        ).fetchone()
        return None if row is None else IdempotencyRecord(*row)

    async def task_get(self, task_id: str) -> TaskRecord | None:
        return await self._run(lambda: self._task(task_id))

    def _task(self, task_id: str) -> TaskRecord | None:
        row = self.db.execute(
            f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE id = ?", (task_id,)
        ).fetchone()
        return None if row is None else _task_record(row)

    async def task_update(self, change: TaskChange) -> bool:
        """Apply `change` if the task is still at `expected_version` (and pending, when
        `change.only_pending`); False if not, and nothing is written then."""

        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    UPDATE_PENDING_TASK if change.only_pending else UPDATE_TASK,
                    (
                        change.status,
                        json.dumps(change.items),
                        change.updated_at,
                        change.retain_until,
                        change.task_id,
                        change.expected_version,
                    ),
                )
                if cursor.rowcount != 1:
                    return False
                ApprovalTables.approvals_insert(self.db, change.approvals)
                for kind, payload in change.outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, change.updated_at)
                AuditTables.audit_write(self.db, change.audit)
            return True

        return await self._run(work)

    async def tasks_pending(self, limit: int) -> list[TaskRecord]:
        """Pending tasks, oldest first."""
        return await self._tasks(SELECT_PENDING, (limit,))

    async def tasks_recent(
        self, statuses: Sequence[str] | None, before: float | None, limit: int
    ) -> list[TaskRecord]:
        """Tasks newest first, of the given statuses (None: any), created before `before`."""
        bound = math.inf if before is None else before
        if statuses is None:
            return await self._tasks(SELECT_RECENT, (bound, limit))

        def work() -> list[TaskRecord]:
            pages = [
                [
                    _task_record(row)
                    for row in self.db.execute(SELECT_RECENT_OF_STATUS, (status, bound, limit))
                ]
                for status in dict.fromkeys(statuses)
            ]
            return list(heapq.merge(*pages, key=_order, reverse=True))[:limit]

        return await self._run(work)

    async def tasks_of_subject(
        self, key: str, before: float | None, limit: int
    ) -> list[TaskRecord]:
        """Tasks whose `subject_key(subject)` is `key`, newest first, created before `before`."""
        bound = math.inf if before is None else before
        return await self._tasks(SELECT_OF_SUBJECT, (key, bound, limit))

    async def tasks_past_expiry(self, now: float, limit: int) -> list[TaskRecord]:
        """Pending tasks whose `expires_at` has passed."""
        return await self._tasks(SELECT_PAST_EXPIRY, (now, limit))

    async def _tasks(self, query: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        def work() -> list[TaskRecord]:
            return [_task_record(row) for row in self.db.execute(query, args).fetchall()]

        return await self._run(work)

    async def tasks_purge(self, now: float, keep_seconds: float) -> None:
        """Forget what no longer works: handles `keep_seconds` past their retention,
        approvals past `approved_until` as long, idle idempotency keys, spent binding jtis,
        the ties of tokens that have expired."""

        def work() -> None:
            with transaction(self.db):
                self.db.execute(DELETE_DECIDED, (now - keep_seconds,))
                self.db.execute(DELETE_OLD_APPROVALS, (now - keep_seconds,))
                self.db.execute(DELETE_IDLE_IDEMPOTENCY, (now,))
                self.db.execute(DELETE_SPENT_BINDINGS, (now,))
                self.db.execute(DELETE_EXPIRED_TIES, (now,))

        await self._run(work)


def _task_record(row: Sequence[Any]) -> TaskRecord:
    values = fields_of(TaskRecord, row, _TASK_JSON)
    values["bundle"] = bool(values["bundle"])
    return TaskRecord(**values)


def _order(record: TaskRecord) -> tuple[float, str]:
    """The pages' order (reversed): SQLite compares ids as `str` does, by code point."""
    return (record.created_at, record.id)
