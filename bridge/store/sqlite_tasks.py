"""Access request tables (ARAP): tasks, the approvals they granted, idempotency keys and the
binding tokens already used.

Every state change of a task is one transaction with an optimistic check (`WHERE status =
'pending' AND version = ?`): two approvers deciding at once leave exactly one outcome, and the
loser learns it lost (and reads the task again). The side effects of an outcome (the internal
`task_terminal` follow-up, an ARAP callback) are queued in the outbox inside that same
transaction, so an outcome is never recorded without them, nor they without it.

Records hold decoded JSON; what the values mean is the access request service's business.
(These records and the `TaskStore` protocol move to `store/base.py` with a second store.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .sqlite_base import SQLiteBase, transaction
from .sqlite_outbox import OutboxTables

JSON = Any


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    pdp: str  # the store whose policies denied (its PDP identifier)
    requester: str
    bundle: bool  # submitted with `items`
    subject: JSON
    context: JSON
    items: list[JSON]  # [{resource, action, status, template, denial, result?, ...}]
    requested_access: JSON | None
    callback: JSON | None
    client: JSON | None
    status: str
    created_at: float
    expires_at: float  # a pending task expires then
    retain_until: float  # the handle works until then (later than expires_at once decided)
    updated_at: float
    version: int = 1


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    id: str
    task_id: str
    item: int
    pdp: str
    template: str
    members: list[str]  # authorization-relevant context members bound
    binding_hash: str  # of the approved subject, resource, action and context (ARAP §5)
    binding: JSON  # the same values in clear, for audit
    approved_at: float
    approved_until: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    requester: str
    key: str
    body_hash: str
    task_id: str
    keep_until: float


@dataclass(frozen=True, slots=True)
class TaskChange:
    """One compare-and-set transition of a pending task."""

    task_id: str
    expected_version: int
    status: str
    items: list[JSON]
    updated_at: float
    retain_until: float
    approvals: list[ApprovalRecord] = field(default_factory=list)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # (kind, payload)


class IdempotencyConflict(Exception):
    """The requester used the key before, for a different body."""


class BindingReused(Exception):
    """A binding token's `jti` was already submitted."""


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS access_requests (
        id TEXT PRIMARY KEY, pdp TEXT NOT NULL, requester TEXT NOT NULL,
        bundle INTEGER NOT NULL, subject TEXT NOT NULL, context TEXT NOT NULL,
        items TEXT NOT NULL, requested_access TEXT, callback TEXT, client TEXT,
        status TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
        retain_until REAL NOT NULL, updated_at REAL NOT NULL, version INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS access_requests_due ON access_requests (status, expires_at)",
    """CREATE TABLE IF NOT EXISTS access_request_approvals (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL, item INTEGER NOT NULL, pdp TEXT NOT NULL,
        template TEXT NOT NULL, members TEXT NOT NULL, binding_hash TEXT NOT NULL,
        binding TEXT NOT NULL, approved_at REAL NOT NULL, approved_until REAL NOT NULL,
        revoked_at REAL)""",
    """CREATE TABLE IF NOT EXISTS access_request_idempotency (
        requester TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
        task_id TEXT NOT NULL, keep_until REAL NOT NULL,
        PRIMARY KEY (requester, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS access_request_bindings (
        jti TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID""",
]

_TASK_JSON = frozenset({"subject", "context", "items", "requested_access", "callback", "client"})
_APPROVAL_JSON = frozenset({"members", "binding"})
_TASK_COLUMNS = ", ".join(f.name for f in fields(TaskRecord))
_APPROVAL_COLUMNS = ", ".join(f.name for f in fields(ApprovalRecord))


class TaskTables(SQLiteBase):
    """Mixin of the access request tables; the store must also mix in `OutboxTables`."""

    SCHEMA = _SCHEMA

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
                claimed = self.db.execute(
                    "SELECT COUNT(*) FROM access_request_bindings WHERE task_id = ?", (task.id,)
                ).fetchone()[0]
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
        return await self._tasks("status = 'pending' ORDER BY created_at LIMIT ?", (limit,))

    async def tasks_past_expiry(self, now: float, limit: int) -> list[TaskRecord]:
        """Pending tasks whose `expires_at` has passed."""
        return await self._tasks(
            "status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?", (now, limit)
        )

    async def _tasks(self, where: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        def work() -> list[TaskRecord]:
            rows = self.db.execute(
                f"SELECT {_TASK_COLUMNS} FROM access_requests WHERE {where}", args
            )
            return [_task_record(row) for row in rows.fetchall()]

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
                self.db.execute(
                    "DELETE FROM access_requests WHERE status != 'pending' AND retain_until < ?",
                    (now - keep_seconds,),
                )
                self.db.execute(
                    "DELETE FROM access_request_approvals WHERE approved_until < ?",
                    (now - keep_seconds,),
                )
                for table, column in (
                    ("access_request_idempotency", "keep_until"),
                    ("access_request_bindings", "expires_at"),
                ):
                    self.db.execute(f"DELETE FROM {table} WHERE {column} < ?", (now,))

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
