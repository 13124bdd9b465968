"""The access request tables on SQLite (records and rules: `store.contract.access_requests`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..contract.access_requests import (
    ApprovalRecord,
    BindingReused,
    IdempotencyConflict,
    IdempotencyRecord,
    TaskChange,
    TaskRecord,
)
from .connection import SQLiteBase, transaction
from .outbox import OutboxTables

_TASK_JSON = frozenset({"subject", "context", "items", "requested_access", "callback", "client"})
_APPROVAL_JSON = frozenset({"members", "binding"})
_TASK_COLUMNS = ", ".join(f.name for f in fields(TaskRecord))
_APPROVAL_COLUMNS = ", ".join(f.name for f in fields(ApprovalRecord))

# Housekeeping and the inbox; each is answered from an index (tests/store/test_plans.py).
SELECT_PENDING = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "ORDER BY created_at LIMIT ?"
)
SELECT_PAST_EXPIRY = (
    f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE status = 'pending' "
    "AND expires_at <= ? ORDER BY expires_at LIMIT ?"
)
DELETE_DECIDED = "DELETE FROM access_requests WHERE status != 'pending' AND retain_until < ?"
DELETE_OLD_APPROVALS = "DELETE FROM access_request_approvals WHERE approved_until < ?"
DELETE_IDLE_IDEMPOTENCY = "DELETE FROM access_request_idempotency WHERE keep_until < ?"
DELETE_SPENT_BINDINGS = "DELETE FROM access_request_bindings WHERE expires_at < ?"
COUNT_CLAIMED_BINDINGS = "SELECT COUNT(*) FROM access_request_bindings WHERE task_id = ?"


class TaskTables(SQLiteBase):
    """Mixin of the access request tables; the store must also mix in `OutboxTables`."""

    async def task_insert(
        self,
        task: TaskRecord,
        idempotency: IdempotencyRecord | None,
        binding_jtis: Sequence[tuple[str, float]],
    ) -> tuple[TaskRecord, bool]:
        """Store a new task, or return the one an equal earlier submission made (False).

        Raises `IdempotencyConflict` (same key, other body) or `BindingReused`."""

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
                self.db.execute(
                    f"INSERT INTO access_requests ({_TASK_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _row(task, _TASK_JSON),
                )
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
        """Apply `change` if the task is still pending at `expected_version`; False if not."""

        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE access_requests SET status = ?, items = ?, updated_at = ?, "
                    "retain_until = ?, version = version + 1 "
                    "WHERE id = ? AND status = 'pending' AND version = ?",
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
                self.db.executemany(
                    f"INSERT INTO access_request_approvals ({_APPROVAL_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_row(a, _APPROVAL_JSON) for a in change.approvals],
                )
                for kind, payload in change.outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, change.updated_at)
            return True

        return await self._run(work)

    async def tasks_pending(self, limit: int) -> list[TaskRecord]:
        """Pending tasks, oldest first."""
        return await self._tasks(SELECT_PENDING, (limit,))

    async def tasks_past_expiry(self, now: float, limit: int) -> list[TaskRecord]:
        """Pending tasks whose `expires_at` has passed."""
        return await self._tasks(SELECT_PAST_EXPIRY, (now, limit))

    async def _tasks(self, query: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        def work() -> list[TaskRecord]:
            return [_task_record(row) for row in self.db.execute(query, args).fetchall()]

        return await self._run(work)

    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]:
        def work() -> dict[str, ApprovalRecord]:
            unique = list(dict.fromkeys(ids))
            marks = ", ".join("?" * len(unique))
            rows = self.db.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM access_request_approvals WHERE id IN ({marks})",
                unique,
            ).fetchall()
            return {row[0]: _approval_record(row) for row in rows}

        return {} if not ids else await self._run(work)

    async def approval_revoke(self, approval_id: str, now: float) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE access_request_approvals SET revoked_at = ? "
                    "WHERE id = ? AND revoked_at IS NULL",
                    (now, approval_id),
                )
            return cursor.rowcount == 1

        return await self._run(work)

    async def tasks_purge(self, now: float, keep_seconds: float) -> None:
        """Forget what no longer works: handles `keep_seconds` past their retention,
        approvals past `approved_until` as long, idle idempotency keys, spent binding jtis."""

        def work() -> None:
            with transaction(self.db):
                self.db.execute(DELETE_DECIDED, (now - keep_seconds,))
                self.db.execute(DELETE_OLD_APPROVALS, (now - keep_seconds,))
                self.db.execute(DELETE_IDLE_IDEMPOTENCY, (now,))
                self.db.execute(DELETE_SPENT_BINDINGS, (now,))

        await self._run(work)


def _row(record: Any, as_json: frozenset[str]) -> tuple[Any, ...]:
    return tuple(
        json.dumps(value) if name in as_json and value is not None else value
        for name, value in ((f.name, getattr(record, f.name)) for f in fields(record))
    )


def _task_record(row: Sequence[Any]) -> TaskRecord:
    values = _decoded(TaskRecord, row, _TASK_JSON)
    values["bundle"] = bool(values["bundle"])
    return TaskRecord(**values)


def _approval_record(row: Sequence[Any]) -> ApprovalRecord:
    return ApprovalRecord(**_decoded(ApprovalRecord, row, _APPROVAL_JSON))


def _decoded(cls: type, row: Sequence[Any], as_json: frozenset[str]) -> dict[str, Any]:
    return {
        f.name: json.loads(value) if f.name in as_json and value is not None else value
        for f, value in zip(fields(cls), row, strict=True)
    }
