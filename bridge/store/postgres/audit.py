"""The audit trail on PostgreSQL (entries and chain: `store.contract.audit`).

An append locks the head row (`FOR UPDATE`) inside the transaction of the change it records,
computes the entries after it and moves it: a second replica appending at once waits on that
row until the first commits, then reads the head the first left. One chain, no fork, no
retry. Every transaction takes the head's lock last and after it only writes rows that no
one else can hold (the new entries), so whoever holds it never waits: no deadlock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..columns import audit_entry, audit_row
from ..contract.audit import AuditEntry, AuditEvent, AuditHead, chained
from .connection import Connection, PostgresBase

_COLUMNS = "seq, at, event, task_id, actor, data, prev_hash, hash"

SELECT_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
LOCK_HEAD = SELECT_HEAD + " FOR UPDATE"
UPDATE_HEAD = "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1"
INSERT_ENTRY = f"INSERT INTO audit_log ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
# Reading the trail, in sequence order, each answered from an index (tests/store/test_plans.py):
# the whole trail from a point (the primary key), one request's (task_id, seq).
SELECT_ENTRIES = (
    f"SELECT {_COLUMNS} FROM audit_log WHERE seq > %s AND at >= %s ORDER BY seq LIMIT %s"
)
SELECT_ENTRIES_OF_TASK = (
    f"SELECT {_COLUMNS} FROM audit_log WHERE task_id = %s AND seq > %s AND at >= %s "
    "ORDER BY seq LIMIT %s"
)


class AuditTables(PostgresBase):
    @staticmethod
    async def audit_write(conn: Connection, events: Sequence[AuditEvent]) -> None:
        """Append `events` after the head; call inside the transaction of the change they
        record, after its other writes (the head's lock is held until the commit)."""
        if not events:
            return
        row = await (await conn.execute(LOCK_HEAD)).fetchone()
        if row is None:
            # Never made by the store once the schema exists: someone removed it.
            raise RuntimeError("the audit trail has no head row (audit_head)")
        seq, digest = row
        entries = chained(events, AuditHead(seq, digest) if seq else None)
        async with conn.cursor() as many:
            await many.executemany(INSERT_ENTRY, [audit_row(entry) for entry in entries])
        await conn.execute(UPDATE_HEAD, (entries[-1].seq, entries[-1].hash))

    async def audit_append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self.transaction() as conn:
            await self.audit_write(conn, events)

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
        async with self.connection() as conn:
            if task_id is None:
                cursor = await conn.execute(SELECT_ENTRIES, (after_seq, at_least, limit))
            else:
                cursor = await conn.execute(
                    SELECT_ENTRIES_OF_TASK, (task_id, after_seq, at_least, limit)
                )
            return [audit_entry(row) for row in await cursor.fetchall()]

    async def audit_head(self) -> AuditHead | None:
        async with self.connection() as conn:
            row = await (await conn.execute(SELECT_HEAD)).fetchone()
        return None if row is None or row[0] == 0 else AuditHead(row[0], row[1])
