"""The remote access request table on PostgreSQL (records and rules:
`store.contract.remote_access_requests`).

Status changes are compare-and-set on the status (one `UPDATE … WHERE status = ANY(%s)`); due
rows are claimed `FOR UPDATE SKIP LOCKED`, so replicas sweeping at once read disjoint tasks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from ..contract.outbox import OutboxEntry
from ..contract.remote_access_requests import PENDING, RemoteTaskRecord
from .connection import PostgresBase
from .outbox import OutboxTables

_COLUMNS = [f.name for f in fields(RemoteTaskRecord)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM remote_access_requests"
# Columns an update may set (the identity columns never change).
_MUTABLE = frozenset(_COLUMNS) - {"id", "client_id", "endpoint", "idempotency_key", "state_hash"}
# The sweeper's claim and the purge, each answered from an index (tests/store/test_plans.py).
# Arguments of the claim: the status, now, limit, the lease's end.
# The rows come back as they were before the claim (their old due time), as SQLite's do.
_RETURNED = ", ".join("due.was_due" if c == "next_check_at" else f"r.{c}" for c in _COLUMNS)
SELECT_DUE = (
    "WITH due AS (SELECT id, next_check_at AS was_due FROM remote_access_requests "
    "WHERE status = %s AND next_check_at <= %s ORDER BY next_check_at LIMIT %s "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE remote_access_requests AS r SET next_check_at = %s FROM due WHERE r.id = due.id "
    f"RETURNING {_RETURNED}"
)
_DUE_AT = _COLUMNS.index("next_check_at")
DELETE_OLD = "DELETE FROM remote_access_requests WHERE expires_at < %s AND status != %s"


class RemoteTaskTables(PostgresBase):
    """Mixin of the remote access request table; the store must also mix in `OutboxTables`."""

    async def remote_task_insert(self, record: RemoteTaskRecord) -> None:
        async with self.connection() as conn:
            await conn.execute(
                f"INSERT INTO remote_access_requests ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})",
                _row(record),
            )

    async def remote_task_get(self, task_id: str) -> RemoteTaskRecord | None:
        return await self._remote_one("id = %s", task_id)

    async def remote_task_by_state(self, state_hash: str) -> RemoteTaskRecord | None:
        return await self._remote_one("state_hash = %s", state_hash)

    async def _remote_one(self, where: str, value: str) -> RemoteTaskRecord | None:
        async with self.connection() as conn:
            row = await (await conn.execute(f"{_SELECT} WHERE {where}", (value,))).fetchone()
        return None if row is None else _record(row)

    async def remote_task_update(
        self,
        task_id: str,
        expected: Sequence[str],
        values: Mapping[str, Any],
        outbox: Sequence[OutboxEntry] = (),
    ) -> bool:
        """Set `values` if the row's status is one of `expected`, and queue `outbox` with
        it; False (nothing written) when the row is gone or its status moved on."""
        unknown = set(values) - _MUTABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        names = sorted(values)  # column names from the fixed set above, never from input
        assignments = ", ".join(f"{name} = %s" for name in names)
        args = [_column_value(name, values[name]) for name in names]
        async with self.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE remote_access_requests SET {assignments} "
                "WHERE id = %s AND status = ANY(%s)",
                (*args, task_id, list(expected)),
            )
            if cursor.rowcount != 1:
                return False
            for kind, payload, not_before in outbox:
                await OutboxTables.outbox_insert(conn, kind, payload, not_before)
        return True

    async def remote_tasks_claim_due(
        self, now: float, limit: int, lease_seconds: float
    ) -> list[RemoteTaskRecord]:
        """Pending rows whose next check is due, oldest due first. Their `next_check_at` is
        pushed `lease_seconds` ahead in the same statement, so two sweepers (or replicas)
        do not read the same task at once, and a sweeper that dies leaves them due again.
        Rows another sweeper is claiming at this moment are skipped, not waited for."""
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_DUE, (PENDING, now, limit, now + lease_seconds))
            rows = await cursor.fetchall()
        return [_record(row) for row in sorted(rows, key=lambda row: row[_DUE_AT])]

    async def remote_tasks_purge(self, before: float) -> int:
        """Forget rows that ended (or were due to end) before `before`: no deferral can wait
        on them any more, since a deferral never outlives its access request."""
        async with self.connection() as conn:
            cursor = await conn.execute(DELETE_OLD, (before, PENDING))
        return cursor.rowcount


def _column_value(name: str, value: Any) -> Any:
    return json.dumps(value) if name == "last_json" and value is not None else value


def _row(record: RemoteTaskRecord) -> tuple[Any, ...]:
    return tuple(_column_value(name, getattr(record, name)) for name in _COLUMNS)


def _record(row: Sequence[Any]) -> RemoteTaskRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    if values["last_json"] is not None:
        values["last_json"] = json.loads(values["last_json"])
    return RemoteTaskRecord(**values)
