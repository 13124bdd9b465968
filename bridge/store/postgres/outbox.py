"""The outbox table on PostgreSQL (rows and rules: `store.contract.outbox`).

Replicas share the work: a claim locks the due rows it takes `FOR UPDATE SKIP LOCKED`, so two
workers claiming at once get disjoint rows without waiting for each other, and pushes their
`next_attempt_at` past the lease in the same statement. A worker that dies holding a lease
leaves its rows due again when the lease runs out, for whichever replica looks next.
"""

from __future__ import annotations

from ..contract.outbox import OutboxRow
from .connection import Connection, PostgresBase

# The worker's claim and the purge, each answered from an index (tests/store/test_plans.py).
# Arguments of the claim: now, limit, the lease's end. Each row comes back with the due time
# it had before the claim (for the order: oldest due first).
SELECT_DUE = (
    "WITH due AS (SELECT id, next_attempt_at AS was_due FROM outbox WHERE status = 'pending' "
    "AND next_attempt_at <= %s ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
    "UPDATE outbox SET next_attempt_at = %s, attempts = outbox.attempts + 1 FROM due "
    "WHERE outbox.id = due.id "
    "RETURNING outbox.id, kind, payload, attempts, created_at, due.was_due"
)
DELETE_OLD = "DELETE FROM outbox WHERE status != 'pending' AND created_at < %s"
# A row with a `dedupe_key` that another row holds (delivered or not) is not queued; rows
# without one never conflict (the unique index is on the keys that are there). A replica
# inserting the same key at the same moment waits for the first to commit, then skips.
INSERT = (
    "INSERT INTO outbox (kind, payload, next_attempt_at, created_at, dedupe_key) "
    "VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING"
)


class OutboxTables(PostgresBase):
    @staticmethod
    async def outbox_insert(
        conn: Connection,
        kind: str,
        payload: bytes,
        not_before: float,
        dedupe_key: str | None = None,
    ) -> bool:
        """Queue a side effect; call inside the transaction of the change that causes it.
        False when a row holds `dedupe_key` already (nothing queued)."""
        cursor = await conn.execute(INSERT, (kind, payload, not_before, not_before, dedupe_key))
        return cursor.rowcount == 1

    async def enqueue(
        self, kind: str, payload: bytes, not_before: float, dedupe_key: str | None = None
    ) -> bool:
        async with self.connection() as conn:
            return await self.outbox_insert(conn, kind, payload, not_before, dedupe_key)

    async def claim_outbox(self, now: float, limit: int, lease_seconds: float) -> list[OutboxRow]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_DUE, (now, limit, now + lease_seconds))
            rows = await cursor.fetchall()
        return [OutboxRow(*row[:-1]) for row in sorted(rows, key=lambda row: (row[-1], row[0]))]

    async def outbox_done(self, row_id: int) -> None:
        await self._outbox_set(row_id, "done", None, None)

    async def outbox_retry(self, row_id: int, next_attempt_at: float, error: str) -> None:
        await self._outbox_set(row_id, "pending", next_attempt_at, error)

    async def outbox_failed(self, row_id: int, error: str) -> None:
        await self._outbox_set(row_id, "failed", None, error)

    async def _outbox_set(
        self, row_id: int, status: str, next_attempt_at: float | None, error: str | None
    ) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE outbox SET status = %s, last_error = %s, "
                "next_attempt_at = COALESCE(%s, next_attempt_at), "
                # Delivered rows keep no payload: it may hold a deferral code.
                "payload = CASE WHEN %s THEN ''::bytea ELSE payload END WHERE id = %s",
                (status, error, next_attempt_at, status == "done", row_id),
            )

    async def outbox_purge(self, before: float) -> None:
        """Forget delivered and given-up rows created before `before`."""
        async with self.connection() as conn:
            await conn.execute(DELETE_OLD, (before,))

    async def outbox_counts(self) -> dict[str, int]:
        async with self.connection() as conn:
            cursor = await conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            return {status: int(count) for status, count in await cursor.fetchall()}
