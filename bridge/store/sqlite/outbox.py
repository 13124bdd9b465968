"""The outbox table on SQLite (rows and rules: `store.contract.outbox`)."""

from __future__ import annotations

import sqlite3

from ..contract.outbox import OutboxRow
from .connection import SQLiteBase, transaction

# The worker's claim and the purge, each answered from an index (tests/store/test_plans.py).
SELECT_DUE = (
    "SELECT id, kind, payload, attempts, created_at FROM outbox "
    "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
)
DELETE_OLD = "DELETE FROM outbox WHERE status != 'pending' AND created_at < ?"
# A row with a `dedupe_key` that another row holds (delivered or not) is not queued; rows
# without one never conflict (the unique index is on the keys that are there).
INSERT = (
    "INSERT INTO outbox (kind, payload, next_attempt_at, created_at, dedupe_key) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING"
)


class OutboxTables(SQLiteBase):
    @staticmethod
    def outbox_insert(
        db: sqlite3.Connection,
        kind: str,
        payload: bytes,
        not_before: float,
        dedupe_key: str | None = None,
    ) -> bool:
        """Queue a side effect; call inside the transaction of the change that causes it.
        False when a row holds `dedupe_key` already (nothing queued)."""
        cursor = db.execute(INSERT, (kind, payload, not_before, not_before, dedupe_key))
        return cursor.rowcount == 1

    async def enqueue(
        self, kind: str, payload: bytes, not_before: float, dedupe_key: str | None = None
    ) -> bool:
        def work() -> bool:
            with transaction(self.db):
                return self.outbox_insert(self.db, kind, payload, not_before, dedupe_key)

        return await self._run(work)

    async def claim_outbox(self, now: float, limit: int, lease_seconds: float) -> list[OutboxRow]:
        def work() -> list[OutboxRow]:
            with transaction(self.db):
                rows = self.db.execute(SELECT_DUE, (now, limit)).fetchall()
                self.db.executemany(
                    "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?",
                    [(now + lease_seconds, row[0]) for row in rows],
                )
            return [OutboxRow(r[0], r[1], r[2], r[3] + 1, r[4]) for r in rows]

        return await self._run(work)

    async def outbox_done(self, row_id: int) -> None:
        await self._outbox_set(row_id, "done", None, None)

    async def outbox_retry(self, row_id: int, next_attempt_at: float, error: str) -> None:
        await self._outbox_set(row_id, "pending", next_attempt_at, error)

    async def outbox_failed(self, row_id: int, error: str) -> None:
        await self._outbox_set(row_id, "failed", None, error)

    async def _outbox_set(
        self, row_id: int, status: str, next_attempt_at: float | None, error: str | None
    ) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "UPDATE outbox SET status = ?, last_error = ?, "
                    "next_attempt_at = COALESCE(?, next_attempt_at), "
                    # Delivered rows keep no payload: it may hold a deferral code.
                    "payload = CASE WHEN ? = 'done' THEN x'' ELSE payload END WHERE id = ?",
                    (status, error, next_attempt_at, status, row_id),
                )

        await self._run(work)

    async def outbox_purge(self, before: float) -> None:
        """Forget delivered and given-up rows created before `before`."""

        def work() -> None:
            with transaction(self.db):
                self.db.execute(DELETE_OLD, (before,))

        await self._run(work)

    async def outbox_counts(self) -> dict[str, int]:
        def work() -> dict[str, int]:
            rows = self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            return {status: count for status, count in rows}

        return await self._run(work)
