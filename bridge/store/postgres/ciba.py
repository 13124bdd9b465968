"""The CIBA requests' table on PostgreSQL (rows and rules: `store.contract.ciba`).

The user's answer is one `UPDATE ... WHERE status = 'pending' ... RETURNING` in the
transaction that also queues what follows from it: two replicas taking her answer at once
change the row once (the second waits for the first's commit, then finds it decided).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contract.ciba import PENDING, CibaRequestRecord
from ..contract.outbox import OutboxEntry
from .connection import PostgresBase
from .outbox import OutboxTables

_COLUMNS = (
    "id, code_hash, client_id, subject_type, subject_id, binding_message, words_json, status, "
    "created_at, expires_at, decided_at"
)
# Each answered from an index (tests/store/test_plans.py).
SELECT_PENDING_FOR = (
    f"SELECT {_COLUMNS} FROM ciba_requests WHERE subject_type = %s AND subject_id = %s "
    "AND status = %s AND expires_at > %s ORDER BY created_at DESC LIMIT %s"
)
DELETE_OLD = "DELETE FROM ciba_requests WHERE expires_at < %s"
_MARKS = ", ".join(["%s"] * 11)


class CibaTables(PostgresBase):
    async def ciba_request_create(
        self, record: CibaRequestRecord, outbox: Sequence[OutboxEntry] = ()
    ) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                f"INSERT INTO ciba_requests ({_COLUMNS}) VALUES ({_MARKS})",
                (
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
                ),
            )
            for kind, payload, not_before in outbox:
                await OutboxTables.outbox_insert(conn, kind, payload, not_before)

    async def ciba_request_get(self, request_id: str) -> CibaRequestRecord | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM ciba_requests WHERE id = %s", (request_id,)
            )
            row = await cursor.fetchone()
        return None if row is None else CibaRequestRecord(*row)

    async def ciba_requests_pending_for(
        self, subject_type: str, subject_id: str, now: float, limit: int
    ) -> list[CibaRequestRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                SELECT_PENDING_FOR, (subject_type, subject_id, PENDING, now, limit)
            )
            return [CibaRequestRecord(*row) for row in await cursor.fetchall()]

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
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE ciba_requests SET status = %s, decided_at = %s WHERE id = %s "
                "AND subject_type = %s AND subject_id = %s AND status = %s AND expires_at > %s "
                f"RETURNING {_COLUMNS}",
                (status, now, request_id, subject_type, subject_id, PENDING, now),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            for kind, payload, not_before in outbox:
                await OutboxTables.outbox_insert(conn, kind, payload, not_before)
        return CibaRequestRecord(*row)

    async def ciba_requests_purge(self, before: float) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(DELETE_OLD, (before,))
        return cursor.rowcount
