"""The deferral table on SQLite (the records and states: `store.contract.deferrals`).

Every state change is one `BEGIN IMMEDIATE` transaction, so a poll, a resolution, a
redemption and a cancellation of one code never interleave, also across processes sharing
the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import astuple
from typing import Any, TypeVar

from ..contract.deferrals import (
    CANCELLED,
    DENIED,
    EXPIRED,
    FINAL,
    LIVE,
    PENDING,
    PING_KIND,
    REDEEMED,
    RESOLVED_OK,
    DeferralRecord,
    PingBuilder,
)
from .connection import SQLiteBase, transaction
from .outbox import OutboxTables

_T = TypeVar("_T")

_COLUMNS = (
    "code_hash, client_id, jkt, snapshot_json, task_id, status, created_at, expires_at, "
    "interval, required_gap, last_poll_at, slow_down_count, notification_endpoint, "
    "code_sealed, notification_token_sealed, resolution_json, resolved_at, dedupe_key, "
    "subject_key"
)
# What goes with a row that leaves `pending` (and again when it leaves `resolved_ok`): the
# secrets it no longer needs, and the key a repeated request would find it by.
_DROP_SECRETS = "code_sealed = NULL, notification_token_sealed = NULL, dedupe_key = NULL"

# Every query below is answered from an index (tests/test_deferral_store.py and
# tests/test_dtr_dedupe.py check the plans).
SELECT_BY_CODE = f"SELECT {_COLUMNS} FROM deferrals WHERE code_hash = ?"
SELECT_PENDING_OF_TASK = f"SELECT {_COLUMNS} FROM deferrals WHERE task_id = ? AND status = ?"
SELECT_LIVE_OF_TASK = "SELECT 1 FROM deferrals WHERE task_id = ? AND status IN (?, ?) LIMIT 1"
# Answered from the (status, expires_at) index alone: the metrics ask on every scrape.
COUNT_BY_STATUS = "SELECT status, COUNT(*) FROM deferrals GROUP BY status"
SELECT_DUE = (
    "SELECT code_hash, task_id FROM deferrals WHERE status IN (?, ?) AND expires_at <= ? LIMIT ?"
)
DELETE_OLD = "DELETE FROM deferrals WHERE status IN (?, ?, ?, ?) AND expires_at < ?"
# A pending deferral of this request (dedupe key, status, least end, client): the one that
# lives longest, should two identical requests have raced past each other.
SELECT_PENDING_BY_KEY = (
    f"SELECT {_COLUMNS} FROM deferrals WHERE dedupe_key = ? AND status = ? "
    "AND expires_at >= ? AND client_id = ? ORDER BY expires_at DESC LIMIT 1"
)


class DeferralTables(SQLiteBase):
    async def deferral_create(self, record: DeferralRecord) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    f"INSERT INTO deferrals ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    astuple(record),  # the fields are declared in column order
                )

        await self._run(work)

    async def deferral_find(self, code_hash: str) -> DeferralRecord | None:
        return await self._run(lambda: self._find(self.db, code_hash))

    async def deferral_find_pending(
        self, client_id: str, dedupe_key: str, not_before: float
    ) -> DeferralRecord | None:
        """The pending deferral of `client_id` filed for the request with `dedupe_key` that
        ends at `not_before` or later (the longest-lived one), if any."""

        def work() -> DeferralRecord | None:
            row = self.db.execute(
                SELECT_PENDING_BY_KEY, (dedupe_key, PENDING, not_before, client_id)
            ).fetchone()
            return None if row is None else DeferralRecord(*row)

        return await self._run(work)

    async def deferral_poll(
        self, code_hash: str, step: Callable[[DeferralRecord], tuple[DeferralRecord, _T]]
    ) -> tuple[_T, str | None] | None:
        """Poll bookkeeping: `step` gets the current row and returns the row as it should be
        after this poll (status, throttle fields) and its verdict, in one transaction.
        Returns (verdict, the task id when this poll ended the deferral and no other live
        deferral waits on that task); None for an unknown code."""

        def work() -> tuple[_T, str | None] | None:
            with transaction(self.db):
                record = self._find(self.db, code_hash)
                if record is None:
                    return None
                after, verdict = step(record)
                self.db.execute(
                    "UPDATE deferrals SET status = ?, last_poll_at = ?, required_gap = ?, "
                    "slow_down_count = ? WHERE code_hash = ?",
                    (
                        after.status,
                        after.last_poll_at,
                        after.required_gap,
                        after.slow_down_count,
                        code_hash,
                    ),
                )
                ended = record.status in LIVE and after.status in FINAL
                if ended:
                    self.db.execute(
                        f"UPDATE deferrals SET {_DROP_SECRETS} WHERE code_hash = ?", (code_hash,)
                    )
                return verdict, self._orphaned(record.task_id) if ended else None

        return await self._run(work)

    async def deferral_resolve(
        self,
        code_hash: str,
        *,
        ok: bool,
        resolution: Mapping[str, Any],
        now: float,
        ping: PingBuilder,
    ) -> bool:
        """`pending` → `resolved_ok` (ok) or `denied`, and the ping queued in the same
        transaction. False (nothing stored) when the row is no longer pending or has expired;
        an expired row is marked so."""

        def work() -> bool:
            with transaction(self.db):
                record = self._find(self.db, code_hash)
                if record is None or record.status != PENDING:
                    return False
                if now >= record.expires_at:
                    self._set_final(code_hash, EXPIRED)
                    return False
                queued = ping(record)
                self.db.execute(
                    "UPDATE deferrals SET status = ?, resolution_json = ?, resolved_at = ?, "
                    f"{_DROP_SECRETS} WHERE code_hash = ?",
                    (RESOLVED_OK if ok else DENIED, json.dumps(resolution), now, code_hash),
                )
                if queued is not None:
                    payload, not_before = queued
                    OutboxTables.outbox_insert(self.db, PING_KIND, payload, not_before)
            return True

        return await self._run(work)

    async def deferral_redeem(self, code_hash: str, now: float) -> bool:
        """Compare-and-set `resolved_ok` → `redeemed`: of concurrent callers exactly one wins."""

        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE deferrals SET status = ? "
                    "WHERE code_hash = ? AND status = ? AND expires_at > ?",
                    (REDEEMED, code_hash, RESOLVED_OK, now),
                )
            return cursor.rowcount == 1

        return await self._run(work)

    async def deferral_deny(self, code_hash: str) -> bool:
        """`resolved_ok` → `denied` (a precondition failed at redemption)."""

        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE deferrals SET status = ? WHERE code_hash = ? AND status = ?",
                    (DENIED, code_hash, RESOLVED_OK),
                )
            return cursor.rowcount == 1

        return await self._run(work)

    async def deferral_cancel(self, code_hash: str, now: float) -> tuple[bool, str | None]:
        """A live deferral → `cancelled` (`expired` when past its end). Returns (changed,
        the task id when no other live deferral still waits on that task)."""

        def work() -> tuple[bool, str | None]:
            with transaction(self.db):
                record = self._find(self.db, code_hash)
                if record is None or record.status not in LIVE:
                    return False, None
                self._set_final(code_hash, EXPIRED if now >= record.expires_at else CANCELLED)
                return True, self._orphaned(record.task_id)

        return await self._run(work)

    async def deferrals_pending_of_task(self, task_id: str) -> list[DeferralRecord]:
        def work() -> list[DeferralRecord]:
            rows = self.db.execute(SELECT_PENDING_OF_TASK, (task_id, PENDING)).fetchall()
            return [DeferralRecord(*row) for row in rows]

        return await self._run(work)

    async def deferral_counts(self) -> dict[str, int]:
        def work() -> dict[str, int]:
            rows = self.db.execute(COUNT_BY_STATUS).fetchall()
            return {status: count for status, count in rows}

        return await self._run(work)

    async def deferrals_expire(
        self, now: float, *, limit: int, purge_before: float
    ) -> tuple[int, list[str]]:
        """Live deferrals past their end → `expired` (at most `limit`), and final rows that
        ended before `purge_before` deleted. Returns (how many expired, the task ids no live
        deferral waits on any more)."""

        def work() -> tuple[int, list[str]]:
            with transaction(self.db):
                due = self.db.execute(SELECT_DUE, (*LIVE, now, limit)).fetchall()
                for code_hash, _ in due:
                    self._set_final(code_hash, EXPIRED)
                tasks = {task for _, task in due if task is not None}
                orphaned = sorted(t for t in tasks if self._orphaned(t) is not None)
                self.db.execute(DELETE_OLD, (*FINAL, purge_before))
            return len(due), orphaned

        return await self._run(work)

    # -- helpers, run on the store's thread inside a transaction --------------------------

    @staticmethod
    def _find(db: sqlite3.Connection, code_hash: str) -> DeferralRecord | None:
        row = db.execute(SELECT_BY_CODE, (code_hash,)).fetchone()
        return None if row is None else DeferralRecord(*row)

    def _set_final(self, code_hash: str, status: str) -> None:
        self.db.execute(
            f"UPDATE deferrals SET status = ?, {_DROP_SECRETS} WHERE code_hash = ?",
            (status, code_hash),
        )

    def _orphaned(self, task_id: str | None) -> str | None:
        """`task_id` when no live deferral waits on it any more (so it may be cancelled)."""
        if task_id is None:
            return None
        still = self.db.execute(SELECT_LIVE_OF_TASK, (task_id, *LIVE)).fetchone()
        return None if still is not None else task_id
