"""The access request tables on PostgreSQL (records and rules: `store.contract.access_requests`).

Across replicas:
- the task CAS is one `UPDATE … WHERE status = 'pending' AND version = %s`: of two approvers
  deciding at once in two replicas exactly one matches;
- an `Idempotency-Key` is claimed first, by inserting its row: a second submission with the
  same key waits on that row until the first commits, then finds it (and returns the first's
  task, or refuses another body), or, when the first rolled back, takes the key itself;
- binding jtis are claimed by one `INSERT … ON CONFLICT DO UPDATE … WHERE spent-and-expired`
  whose returned rows are the ones this submission won; fewer than asked means a jti is
  already spent, and everything the transaction wrote is rolled back;
- the approvals, outbox rows and audit entries of a change are written in its transaction,
  the audit entries last (`audit.py`: their lock is the last one taken).
"""

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
from .connection import Connection, PostgresBase
from .outbox import OutboxTables

_TASK_JSON = frozenset({"subject", "context", "items", "requested_access", "callback", "client"})
_TASK_FIELDS = [f.name for f in fields(TaskRecord)]
_TASK_COLUMNS = ", ".join(_TASK_FIELDS)

# The record's columns, and the key a person's own requests are found by.
INSERT_TASK = (
    f"INSERT INTO access_requests ({_TASK_COLUMNS}, subject_key) "
    f"VALUES ({', '.join(['%s'] * (len(_TASK_FIELDS) + 1))})"
)
# The compare-and-set: pending at the expected version, or (a decided task's items changed)
# at the expected version in whatever status.
UPDATE_PENDING_TASK = (
    "UPDATE access_requests SET status = %s, items = %s, updated_at = %s, retain_until = %s, "
    "version = version + 1 WHERE id = %s AND status = 'pending' AND version = %s"
)
UPDATE_TASK = (
    "UPDATE access_requests SET status = %s, items = %s, updated_at = %s, retain_until = %s, "
    "version = version + 1 WHERE id = %s AND version = %s"
)
# Housekeeping and the inbox; each is answered from an index (tests/store/test_plans.py).
SELECT_PENDING = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "ORDER BY created_at LIMIT %s"
)
SELECT_PAST_EXPIRY = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "AND expires_at <= %s ORDER BY expires_at LIMIT %s"
)
# Pages, newest first: of any status, of one status (a page of several statuses merges one
# page of each, every one read in index order), of one subject. Ids are compared byte by
# byte (COLLATE "C", as the indexes are), as SQLite and Python compare them. Without a
# `before` the bound is +infinity, so the statement and its plan stay the same.
_NEWEST_FIRST = 'ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT %s'
SELECT_RECENT = f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE created_at < %s {_NEWEST_FIRST}"
SELECT_RECENT_OF_STATUS = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = %s AND created_at < %s "
    f"{_NEWEST_FIRST}"
)
SELECT_OF_SUBJECT = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE subject_key = %s AND created_at < %s "
    f"{_NEWEST_FIRST}"
)
DELETE_DECIDED = "DELETE FROM access_requests WHERE status != 'pending' AND retain_until < %s"
DELETE_OLD_APPROVALS = "DELETE FROM access_request_approvals WHERE approved_until < %s"
DELETE_IDLE_IDEMPOTENCY = "DELETE FROM access_request_idempotency WHERE keep_until < %s"
DELETE_SPENT_BINDINGS = "DELETE FROM access_request_bindings WHERE expires_at < %s"

# Takes the key, or a key whose record has lapsed; an active one is left as it is.
_CLAIM_IDEMPOTENCY = (
    "INSERT INTO access_request_idempotency (requester, key, body_hash, task_id, keep_until) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (requester, key) DO UPDATE SET "
    "body_hash = EXCLUDED.body_hash, task_id = EXCLUDED.task_id, "
    "keep_until = EXCLUDED.keep_until WHERE access_request_idempotency.keep_until <= %s"
)
_SELECT_IDEMPOTENCY = (
    "SELECT requester, key, body_hash, task_id, keep_until FROM access_request_idempotency "
    "WHERE requester = %s AND key = %s"
)
# A spent jti stays spent until the denial it bound can no longer be used.
_CLAIM_BINDINGS = (
    "INSERT INTO access_request_bindings (jti, task_id, expires_at) "
    "SELECT jti, %s, expires_at FROM unnest(%s::text[], %s::double precision[]) "
    "AS claimed (jti, expires_at) "
    "ON CONFLICT (jti) DO UPDATE SET task_id = EXCLUDED.task_id, "
    "expires_at = EXCLUDED.expires_at WHERE access_request_bindings.expires_at < %s "
    "RETURNING jti"
)


class TaskTables(PostgresBase):
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

        Raises `IdempotencyConflict` (same key, other body) or `BindingReused`; nothing is
        written then (the transaction is rolled back). What goes with a new task is written
        only with it."""
        async with self.transaction() as conn:
            if idempotency is not None:
                earlier = await self._claim_idempotency(conn, idempotency, task.created_at)
                if earlier is not None:
                    if earlier.body_hash != idempotency.body_hash:
                        raise IdempotencyConflict(earlier.task_id)
                    found = await self._task(conn, earlier.task_id)
                    if found is not None:
                        return found, False
                    # The earlier task is gone: this submission takes the key over.
                    await conn.execute(
                        "UPDATE access_request_idempotency SET body_hash = %s, task_id = %s, "
                        "keep_until = %s WHERE requester = %s AND key = %s",
                        (
                            idempotency.body_hash,
                            idempotency.task_id,
                            idempotency.keep_until,
                            idempotency.requester,
                            idempotency.key,
                        ),
                    )
            # The first expiry given for a jti counts, as when each is inserted in turn.
            wanted = dict(reversed(list(binding_jtis)))
            if wanted:
                cursor = await conn.execute(
                    _CLAIM_BINDINGS,
                    (task.id, list(wanted), list(wanted.values()), task.created_at),
                )
                if len(await cursor.fetchall()) != len(wanted):
                    raise BindingReused()  # leaving the transaction rolls everything back
            await conn.execute(INSERT_TASK, (*row_of(task, _TASK_JSON), subject_key(task.subject)))
            await ApprovalTables.approvals_insert(conn, approvals)
            for kind, payload in outbox:
                await OutboxTables.outbox_insert(conn, kind, payload, task.created_at)
            await AuditTables.audit_write(conn, audit)
        return task, True

    @staticmethod
    async def _claim_idempotency(
        conn: Connection, idempotency: IdempotencyRecord, now: float
    ) -> IdempotencyRecord | None:
        """Insert the key's record (None), or return the active record it already has,
        locked (another submission's, committed: a concurrent insert waits for it)."""
        claim = (
            idempotency.requester,
            idempotency.key,
            idempotency.body_hash,
            idempotency.task_id,
            idempotency.keep_until,
            now,
        )
        for _ in range(3):
            cursor = await conn.execute(_CLAIM_IDEMPOTENCY, claim)
            if cursor.rowcount == 1:
                return None
            # The conflicting row is locked now (ON CONFLICT locks it even when it is left
            # as it is); read it. Gone already (purged between the two): claim it again.
            cursor = await conn.execute(
                _SELECT_IDEMPOTENCY, (idempotency.requester, idempotency.key)
            )
            row = await cursor.fetchone()
            if row is not None:
                return IdempotencyRecord(*row)
        raise RuntimeError("the idempotency key could be neither claimed nor read")

    async def idempotency_find(
        self, requester: str, key: str, now: float
    ) -> IdempotencyRecord | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                _SELECT_IDEMPOTENCY + " AND keep_until > %s", (requester, key, now)
            )
            row = await cursor.fetchone()
        return None if row is None else IdempotencyRecord(*row)

    async def task_get(self, task_id: str) -> TaskRecord | None:
        async with self.connection() as conn:
            return await self._task(conn, task_id)

    @staticmethod
    async def _task(conn: Connection, task_id: str) -> TaskRecord | None:
        cursor = await conn.execute(
            f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE id = %s", (task_id,)
        )
        row = await cursor.fetchone()
        return None if row is None else _task_record(row)

    async def task_update(self, change: TaskChange) -> bool:
        """Apply `change` if the task is still at `expected_version` (and pending, when
        `change.only_pending`); False if not, and nothing is written then."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
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
            await ApprovalTables.approvals_insert(conn, change.approvals)
            for kind, payload in change.outbox:
                await OutboxTables.outbox_insert(conn, kind, payload, change.updated_at)
            await AuditTables.audit_write(conn, change.audit)
        return True

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
        pages = [
            await self._tasks(SELECT_RECENT_OF_STATUS, (status, bound, limit))
            for status in dict.fromkeys(statuses)
        ]
        return list(heapq.merge(*pages, key=_order, reverse=True))[:limit]

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
        async with self.connection() as conn:
            cursor = await conn.execute(query, args)
            return [_task_record(row) for row in await cursor.fetchall()]

    async def tasks_purge(self, now: float, keep_seconds: float) -> None:
        """Forget what no longer works: handles `keep_seconds` past their retention,
        approvals past `approved_until` as long, idle idempotency keys, spent binding jtis,
        the ties of tokens that have expired."""
        async with self.transaction() as conn:
            await conn.execute(DELETE_DECIDED, (now - keep_seconds,))
            await conn.execute(DELETE_OLD_APPROVALS, (now - keep_seconds,))
            await conn.execute(DELETE_IDLE_IDEMPOTENCY, (now,))
            await conn.execute(DELETE_SPENT_BINDINGS, (now,))
            await conn.execute(DELETE_EXPIRED_TIES, (now,))


def _task_record(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(**fields_of(TaskRecord, row, _TASK_JSON))


def _order(record: TaskRecord) -> tuple[float, str]:
    """The pages' order (reversed): ids by code point, as `COLLATE "C"` compares UTF-8."""
    return (record.created_at, record.id)
