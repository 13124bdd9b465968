"""The remote access request table on SQLite (records and rules:
`store.contract.remote_access_requests`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from ..contract.outbox import OutboxEntry
from ..contract.remote_access_requests import PENDING, RemoteTaskRecord
from .connection import SQLiteBase, transaction
from .outbox import OutboxTables

_COLUMNS = [f.name for f in fields(RemoteTaskRecord)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM remote_access_requests"
# Columns an update may set (the identity columns never change).
_MUTABLE = frozenset(_COLUMNS) - {"id", "client_id", "endpoint", "idempotency_key", "state_hash"}
# The sweeper's claim and the purge, each answered from an index (tests/store/test_plans.py).
SELECT_DUE = f"{_SELECT} WHERE status = ? AND next_check_at <= ? ORDER BY next_check_at LIMIT ?"
DELETE_OLD = "DELETE FROM remote_access_requests WHERE expires_at < ? AND status != ?"


class RemoteTaskTables(SQLiteBase):
    """Mixin of the remote access request table; the store must also mix in `OutboxTables`."""

    async def remote_task_insert(self, record: RemoteTaskRecord) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    f"INSERT INTO remote_access_requests ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    _row(record),
                )

        await self._run(work)

    async def remote_task_get(self, task_id: str) -> RemoteTaskRecord | None:
        return await self._remote_one("id = ?", task_id)

    async def remote_task_by_state(self, state_hash: str) -> RemoteTaskRecord | None:
        return await self._remote_one("state_hash = ?", state_hash)

    async def _remote_one(self, where: str, value: str) -> RemoteTaskRecord | None:
        def work() -> RemoteTaskRecord | None:
            row = self.db.execute(f"{_SELECT} WHERE {where}", (value,)).fetchone()
            return None if row is None else _record(row)

        return await self._run(work)

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
        names = list(values)
        assignments = ", ".join(f"{name} = ?" for name in names)
        marks = ", ".join("?" * len(expected))
        args = [_column_value(name, values[name]) for name in names]

        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    f"UPDATE remote_access_requests SET {assignments} "
                    f"WHERE id = ? AND status IN ({marks})",
                    (*args, task_id, *expected),
                )
                if cursor.rowcount != 1:
                    return False
                for kind, payload, not_before in outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, not_before)
            return True

        return await self._run(work)

    async def remote_tasks_claim_due(
        self, now: float, limit: int, lease_seconds: float
    ) -> list[RemoteTaskRecord]:
        """Pending rows whose next check is due, oldest due first. Their `next_check_at` is
        pushed `lease_seconds` ahead in the same transaction, so two sweepers (or replicas)
        do not read the same task at once, and a sweeper that dies leaves them due again."""

        def work() -> list[RemoteTaskRecord]:
            with transaction(self.db):
                rows = self.db.execute(SELECT_DUE, (PENDING, now, limit)).fetchall()
                self.db.executemany(
                    "UPDATE remote_access_requests SET next_check_at = ? WHERE id = ?",
                    [(now + lease_seconds, row[0]) for row in rows],
                )
            return [_record(row) for row in rows]

        return await self._run(work)

    async def remote_tasks_purge(self, before: float) -> int:
        """Forget rows that ended (or were due to end) before `before`: no deferral can wait
        on them any more, since a deferral never outlives its access request."""

        def work() -> int:
            with transaction(self.db):
                cursor = self.db.execute(DELETE_OLD, (before, PENDING))
            return cursor.rowcount

        return await self._run(work)


def _column_value(name: str, value: Any) -> Any:
    return json.dumps(value) if name == "last_json" and value is not None else value


def _row(record: RemoteTaskRecord) -> tuple[Any, ...]:
    return tuple(_column_value(name, getattr(record, name)) for name in _COLUMNS)


def _record(row: Sequence[Any]) -> RemoteTaskRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    if values["last_json"] is not None:
        values["last_json"] = json.loads(values["last_json"])
    return RemoteTaskRecord(**values)
