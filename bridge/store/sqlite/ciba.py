"""The CIBA requests' table on SQLite (rows and rules: `store.contract.ciba`).

The user's answer is one `UPDATE ... WHERE status = 'pending'` with its `rowcount`, in the
transaction that also queues what follows from it, so of two answers at once one counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contract.ciba import PENDING, CibaRequestRecord
from ..contract.outbox import OutboxEntry
from .connection import SQLiteBase, transaction
from .outbox import OutboxTables

_COLUMNS = (
    "id, code_hash, client_id, subject_type, subject_id, binding_message, words_json, status, "
    "created_at, expires_at, decided_at"
)
# Each answered from an index (tests/store/test_plans.py).
SELECT_PENDING_FOR = (
    f"SELECT {_COLUMNS} FROM ciba_requests WHERE subject_type = ? AND subject_id = ? "
    "AND status = ? AND expires_at > ? ORDER BY created_at DESC LIMIT ?"
)
DELETE_OLD = "DELETE FROM ciba_requests WHERE expires_at < ?"
_MARKS = ", ".join(["?"] * 11)


class CibaTables(SQLiteBase):
    async def ciba_request_create(
        self, record: CibaRequestRecord, outbox: Sequence[OutboxEntry] = ()
    ) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    f"INSERT INTO ciba_requests ({_COLUMNS}) VALUES ({_MARKS})",
                    _row(record),
                )
                for kind, payload, not_before in outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, not_before)

        await self._run(work)

    async def ciba_request_get(self, request_id: str) -> CibaRequestRecord | None:
        def work() -> CibaRequestRecord | None:
            row = self.db.execute(
                f"SELECT {_COLUMNS} FROM ciba_requests WHERE id = ?", (request_id,)
            ).fetchone()
            return None if row is None else CibaRequestRecord(*row)

        return await self._run(work)

    async def ciba_requests_pending_for(
        self, subject_type: str, subject_id: str, now: float, limit: int
    ) -> list[CibaRequestRecord]:
        def work() -> list[CibaRequestRecord]:
            rows = self.db.execute(
                SELECT_PENDING_FOR, (subject_type, subject_id, PENDING, now, limit)
            ).fetchall()
            return [CibaRequestRecord(*row) for row in rows]

        return await self._run(work)

    async def ciba_request_decide(
        self,
        request_id: str,
        *,
        subject_type: str,
        subject_id: str,
        status: str,
        now: float,
        outbox: Sequence[OutboxEntry] = (),
    ) -> CibaRequestRecord | None:
        def work() -> CibaRequestRecord | None:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE ciba_requests SET status = ?, decided_at = ? WHERE id = ? "
                    "AND subject_type = ? AND subject_id = ? AND status = ? AND expires_at > ?",
                    (status, now, request_id, subject_type, subject_id, PENDING, now),
                )
                if cursor.rowcount != 1:
                    return None
                for kind, payload, not_before in outbox:
                    OutboxTables.outbox_insert(self.db, kind, payload, not_before)
                row = self.db.execute(
                    f"SELECT {_COLUMNS} FROM ciba_requests WHERE id = ?", (request_id,)
                ).fetchone()
            return CibaRequestRecord(*row)

        return await self._run(work)

    async def ciba_requests_purge(self, before: float) -> int:
        def work() -> int:
            with transaction(self.db):
                return self.db.execute(DELETE_OLD, (before,)).rowcount

        return await self._run(work)


def _row(record: CibaRequestRecord) -> tuple[object, ...]:
    return (
        record.id,
        record.code_hash,
        record.client_id,
        record.subject_type,
        record.subject_id,
        record.binding_message,
        record.words_json,
        record.status,
        record.created_at,
        record.expires_at,
        record.decided_at,
    )
