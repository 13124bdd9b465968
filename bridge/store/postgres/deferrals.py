"""The deferral table on PostgreSQL (the records and states: `store.contract.deferrals`).

Every state change is one transaction that reads its row `FOR UPDATE`, so a poll, a
resolution, a redemption and a cancellation of one code never interleave, whichever replicas
they reach. A change that ends a deferral asks whether another live deferral still waits on
its access request while holding an advisory lock on that request's id (taken after the row
locks, in sorted order): two deferrals of one request ending at once in two replicas report
the request exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
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
from .connection import Connection, PostgresBase
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
# The first key of the advisory locks on access request ids (the second is the id's hash).
TASK_LOCK = 0x62726467  # "brdg"

# Every query below is answered from an index (tests/store/test_plans.py checks the plans).
SELECT_BY_CODE = f"SELECT {_COLUMNS} FROM deferrals WHERE code_hash = %s"
SELECT_PENDING_OF_TASK = f"SELECT {_COLUMNS} FROM deferrals WHERE task_id = %s AND status = %s"
SELECT_LIVE_OF_TASK = "SELECT 1 FROM deferrals WHERE task_id = %s AND status = ANY(%s) LIMIT 1"
# Answered from the (status, expires_at) index alone: the metrics ask on every scrape.
COUNT_BY_STATUS = "SELECT status, COUNT(*) FROM deferrals GROUP BY status"
SELECT_DUE = (
    "SELECT code_hash, task_id FROM deferrals WHERE status = ANY(%s) AND expires_at <= %s "
    "LIMIT %s FOR UPDATE SKIP LOCKED"
)
DELETE_OLD = "DELETE FROM deferrals WHERE status = ANY(%s) AND expires_at < %s"
SELECT_PENDING_BY_KEY = (
    f"SELECT {_COLUMNS} FROM deferrals WHERE dedupe_key = %s AND status = %s "
    "AND expires_at >= %s AND client_id = %s ORDER BY expires_at DESC LIMIT 1"
)
_MARKS = ", ".join(["%s"] * 19)


class DeferralTables(PostgresBase):
    async def deferral_create(self, record: DeferralRecord) -> None:
        async with self.connection() as conn:
            await conn.execute(
                f"INSERT INTO deferrals ({_COLUMNS}) VALUES ({_MARKS})",
                astuple(record),  # the fields are declared in column order
            )

    async def deferral_find(self, code_hash: str) -> DeferralRecord | None:
        async with self.connection() as conn:
            return await self._find(conn, code_hash)

    async def deferral_find_pending(
        self, client_id: str, dedupe_key: str, not_before: float
    ) -> DeferralRecord | None:
        """The pending deferral of `client_id` filed for the request with `dedupe_key` that
        ends at `not_before` or later (the longest-lived one), if any."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                SELECT_PENDING_BY_KEY, (dedupe_key, PENDING, not_before, client_id)
            )
            row = await cursor.fetchone()
        return None if row is None else DeferralRecord(*row)

    async def deferral_poll(
        self, code_hash: str, step: Callable[[DeferralRecord], tuple[DeferralRecord, _T]]
    ) -> tuple[_T, str | None] | None:
        """Poll bookkeeping: `step` gets the current row (locked) and returns the row as it
        should be after this poll (status, throttle fields) and its verdict, in one
        transaction. Returns (verdict, the task id when this poll ended the deferral and no
        other live deferral waits on that task); None for an unknown code."""
        async with self.transaction() as conn:
            record = await self._find(conn, code_hash, lock=True)
            if record is None:
                return None
            after, verdict = step(record)
            ended = record.status in LIVE and after.status in FINAL
            await conn.execute(
                "UPDATE deferrals SET status = %s, last_poll_at = %s, required_gap = %s, "
                f"slow_down_count = %s{', ' + _DROP_SECRETS if ended else ''} "
                "WHERE code_hash = %s",
                (
                    after.status,
                    after.last_poll_at,
                    after.required_gap,
                    after.slow_down_count,
                    code_hash,
                ),
            )
            if not ended:
                return verdict, None
            return verdict, await self._orphaned(conn, record.task_id)

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
        async with self.transaction() as conn:
            record = await self._find(conn, code_hash, lock=True)
            if record is None or record.status != PENDING:
                return False
            if now >= record.expires_at:
                await self._set_final(conn, [code_hash], EXPIRED)
                return False
            queued = ping(record)
            await conn.execute(
                "UPDATE deferrals SET status = %s, resolution_json = %s, resolved_at = %s, "
                f"{_DROP_SECRETS} WHERE code_hash = %s",
                (RESOLVED_OK if ok else DENIED, json.dumps(resolution), now, code_hash),
            )
            if queued is not None:
                payload, not_before = queued
                await OutboxTables.outbox_insert(conn, PING_KIND, payload, not_before)
        return True

    async def deferral_redeem(self, code_hash: str, now: float) -> bool:
        """Compare-and-set `resolved_ok` → `redeemed`: of concurrent callers exactly one wins
        (the others wait for its commit, then find the status changed)."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE deferrals SET status = %s "
                "WHERE code_hash = %s AND status = %s AND expires_at > %s",
                (REDEEMED, code_hash, RESOLVED_OK, now),
            )
        return cursor.rowcount == 1

    async def deferral_deny(self, code_hash: str) -> bool:
        """`resolved_ok` → `denied` (a precondition failed at redemption)."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE deferrals SET status = %s WHERE code_hash = %s AND status = %s",
                (DENIED, code_hash, RESOLVED_OK),
            )
        return cursor.rowcount == 1

    async def deferral_cancel(self, code_hash: str, now: float) -> tuple[bool, str | None]:
        """A live deferral → `cancelled` (`expired` when past its end). Returns (changed,
        the task id when no other live deferral still waits on that task)."""
        async with self.transaction() as conn:
            record = await self._find(conn, code_hash, lock=True)
            if record is None or record.status not in LIVE:
                return False, None
            final = EXPIRED if now >= record.expires_at else CANCELLED
            await self._set_final(conn, [code_hash], final)
            return True, await self._orphaned(conn, record.task_id)

    async def deferrals_pending_of_task(self, task_id: str) -> list[DeferralRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_PENDING_OF_TASK, (task_id, PENDING))
            return [DeferralRecord(*row) for row in await cursor.fetchall()]

    async def deferral_counts(self) -> dict[str, int]:
        async with self.connection() as conn:
            cursor = await conn.execute(COUNT_BY_STATUS)
            return {status: int(count) for status, count in await cursor.fetchall()}

    async def deferrals_expire(
        self, now: float, *, limit: int, purge_before: float
    ) -> tuple[int, list[str]]:
        """Live deferrals past their end → `expired` (at most `limit`), and final rows that
        ended before `purge_before` deleted. Returns (how many expired, the task ids no live
        deferral waits on any more).

        Rows another transaction holds (a poll, at this moment) are skipped: that poll sees
        the end itself, or the next pass takes them. The purge is a transaction of its own,
        so it holds no lock the expiry needs."""
        async with self.transaction() as conn:
            cursor = await conn.execute(SELECT_DUE, (list(LIVE), now, limit))
            due = await cursor.fetchall()
            tasks = sorted({task for _, task in due if task is not None})
            await self._set_final(conn, [code_hash for code_hash, _ in due], EXPIRED)
            orphaned = [t for t in tasks if await self._orphaned(conn, t) is not None]
        async with self.connection() as conn:
            await conn.execute(DELETE_OLD, (list(FINAL), purge_before))
        return len(due), orphaned

    # -- helpers, run inside a transaction ----------------------------------------------

    @staticmethod
    async def _find(
        conn: Connection, code_hash: str, *, lock: bool = False
    ) -> DeferralRecord | None:
        query = SELECT_BY_CODE + (" FOR UPDATE" if lock else "")
        row = await (await conn.execute(query, (code_hash,))).fetchone()
        return None if row is None else DeferralRecord(*row)

    @staticmethod
    async def _set_final(conn: Connection, code_hashes: Iterable[str], status: str) -> None:
        hashes = list(code_hashes)
        if hashes:
            await conn.execute(
                f"UPDATE deferrals SET status = %s, {_DROP_SECRETS} WHERE code_hash = ANY(%s)",
                (status, hashes),
            )

    @staticmethod
    async def _orphaned(conn: Connection, task_id: str | None) -> str | None:
        """`task_id` when no live deferral waits on it any more (so it may be cancelled).
        Asked holding the task's advisory lock, so that of two transactions ending the last
        two deferrals of one task, the later sees the earlier's change."""
        if task_id is None:
            return None
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", (TASK_LOCK, task_id)
        )
        cursor = await conn.execute(SELECT_LIVE_OF_TASK, (task_id, list(LIVE)))
        still = await cursor.fetchone()
        return None if still is not None else task_id
