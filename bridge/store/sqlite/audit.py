"""The audit trail on SQLite (entries and chain: `store.contract.audit`).

An append reads the head and writes after it inside the transaction of the change it
records. That transaction holds SQLite's write lock from its `BEGIN IMMEDIATE` to its end,
across every process sharing the file, so no other append can read the same head: one
chain, without a lock of its own.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from ..columns import audit_entry, audit_row
from ..contract.audit import AuditEntry, AuditEvent, AuditHead, chained
from .connection import SQLiteBase, transaction

_COLUMNS = "seq, at, event, task_id, actor, data, prev_hash, hash"

SELECT_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
UPDATE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
INSERT_ENTRY = f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# Reading the trail, in sequence order, each answered from an index (tests/store/test_plans.py):
# the whole trail from a point (the primary key), one request's (task_id, seq).
SELECT_ENTRIES = f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? AND at >= ? ORDER BY seq LIMIT ?"
SELECT_ENTRIES_OF_TASK = (
    f"SELECT {_COLUMNS} FROM audit_log WHERE task_id = ? AND seq > ? AND at >= ? "
    "ORDER BY seq LIMIT ?"
)


class AuditTables(SQLiteBase):
    @staticmethod
    def audit_write(db: sqlite3.Connection, events: Sequence[AuditEvent]) -> None:
        """Append `events` after the head; call inside the transaction of the change they
        record."""
        if not events:
            return
        row = db.execute(SELECT_HEAD).fetchone()
        if row is None:
            # Never made by the store once the schema exists: someone removed it.
            raise RuntimeError("the audit trail has no head row (audit_head)")
        seq, digest = row
        entries = chained(events, AuditHead(seq, digest) if seq else None)
        db.executemany(INSERT_ENTRY, [audit_row(entry) for entry in entries])
        db.execute(UPDATE_HEAD, (entries[-1].seq, entries[-1].hash))

    async def audit_append(self, events: Sequence[AuditEvent]) -> None:
        def work() -> None:
            with transaction(self.db):
                self.audit_write(self.db, events)

        if events:
            await self._run(work)

    async def audit_entries(
        self,
        *,
        after_seq: int = 0,
        since: float | None = None,
        task_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        # No `since`: every time qualifies, and the statement stays one of the two above.
        at_least = -math.inf if since is None else since

        def work() -> list[AuditEntry]:
            if task_id is None:
                rows = self.db.execute(SELECT_ENTRIES, (after_seq, at_least, limit))
            else:
                rows = self.db.execute(
                    SELECT_ENTRIES_OF_TASK, (task_id, after_seq, at_least, limit)
                )
            return [audit_entry(row) for row in rows.fetchall()]

        return await self._run(work)

    async def audit_head(self) -> AuditHead | None:
        def work() -> AuditHead | None:
            row = self.db.execute(SELECT_HEAD).fetchone()
            return None if row is None or row[0] == 0 else AuditHead(row[0], row[1])

        return await self._run(work)
