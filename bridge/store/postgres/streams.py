"""The SSF transmitter's tables on PostgreSQL: event streams, their subjects, SETs waiting for
a poll, and the transmitter's cursor in the audit trail (records and rules:
`store.contract.events`).

A stream changes by compare-and-set on its version, a SET is queued once by its primary key
(`ON CONFLICT DO NOTHING`), and the cursor moves by compare-and-set: replicas queueing the
same events at once leave one copy of each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields

from ..columns import fields_of, row_of
from ..contract.events import StreamRecord, WaitingSET
from .connection import PostgresBase

_STREAM_JSON = frozenset({"config", "events_delivered"})
_STREAM_COLUMNS = ", ".join(f.name for f in fields(StreamRecord))

INSERT_STREAM = (
    f"INSERT INTO ssf_streams ({_STREAM_COLUMNS}) "
    f"VALUES ({', '.join(['%s'] * len(fields(StreamRecord)))})"
)
SELECT_STREAM = f"SELECT {_STREAM_COLUMNS} FROM ssf_streams WHERE id = %s"
# Each answered from an index (tests/store/test_plans.py).
SELECT_STREAMS_OF = (
    f"SELECT {_STREAM_COLUMNS} FROM ssf_streams WHERE receiver = %s "
    'ORDER BY created_at, id COLLATE "C"'
)
SELECT_STREAMS = f'SELECT {_STREAM_COLUMNS} FROM ssf_streams ORDER BY created_at, id COLLATE "C"'
UPDATE_STREAM = (
    "UPDATE ssf_streams SET config = %s, events_delivered = %s, status = %s, reason = %s, "
    "updated_at = %s, authorization_sealed = %s, version = %s WHERE id = %s AND version = %s"
)
SET_SUBJECT = (
    "INSERT INTO ssf_stream_subjects (stream_id, subject, included) VALUES (%s, %s, %s) "
    "ON CONFLICT (stream_id, subject) DO UPDATE SET included = EXCLUDED.included"
)
QUEUE_SET = (
    "INSERT INTO ssf_poll_queue (stream_id, jti, claims, created_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (stream_id, jti) DO NOTHING"
)
ACKNOWLEDGE_SETS = "DELETE FROM ssf_poll_queue WHERE stream_id = %s AND jti = ANY(%s)"
SELECT_WAITING = (
    "SELECT jti, claims, created_at FROM ssf_poll_queue WHERE stream_id = %s "
    'ORDER BY created_at, jti COLLATE "C" LIMIT %s'
)
DELETE_OLD_SETS = "DELETE FROM ssf_poll_queue WHERE created_at < %s"


class StreamTables(PostgresBase):
    async def stream_create(self, record: StreamRecord) -> None:
        async with self.connection() as conn:
            await conn.execute(INSERT_STREAM, row_of(record, _STREAM_JSON))

    async def stream_get(self, stream_id: str) -> StreamRecord | None:
        async with self.connection() as conn:
            row = await (await conn.execute(SELECT_STREAM, (stream_id,))).fetchone()
        return None if row is None else _stream(row)

    async def streams_of_receiver(self, receiver: str) -> list[StreamRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_STREAMS_OF, (receiver,))
            return [_stream(row) for row in await cursor.fetchall()]

    async def streams_all(self) -> list[StreamRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_STREAMS)
            return [_stream(row) for row in await cursor.fetchall()]

    async def stream_update(self, record: StreamRecord, expected_version: int) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(
                UPDATE_STREAM,
                (
                    json.dumps(record.config),
                    json.dumps(record.events_delivered),
                    record.status,
                    record.reason,
                    record.updated_at,
                    record.authorization_sealed,
                    record.version,
                    record.id,
                    expected_version,
                ),
            )
        return cursor.rowcount == 1

    async def stream_delete(self, stream_id: str) -> bool:
        async with self.transaction() as conn:
            cursor = await conn.execute("DELETE FROM ssf_streams WHERE id = %s", (stream_id,))
            await conn.execute("DELETE FROM ssf_stream_subjects WHERE stream_id = %s", (stream_id,))
            await conn.execute("DELETE FROM ssf_poll_queue WHERE stream_id = %s", (stream_id,))
        return cursor.rowcount == 1

    async def stream_subject_set(self, stream_id: str, subject: str, included: bool) -> None:
        async with self.connection() as conn:
            await conn.execute(SET_SUBJECT, (stream_id, subject, included))

    async def stream_subjects(self, stream_id: str) -> dict[str, bool]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT subject, included FROM ssf_stream_subjects WHERE stream_id = %s",
                (stream_id,),
            )
            return {str(subject): bool(included) for subject, included in await cursor.fetchall()}

    async def poll_queue_add(self, stream_id: str, jti: str, claims: object, now: float) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(QUEUE_SET, (stream_id, jti, json.dumps(claims), now))
        return cursor.rowcount == 1

    async def poll_queue_take(
        self, stream_id: str, acknowledged: Sequence[str], limit: int
    ) -> tuple[list[WaitingSET], bool]:
        async with self.transaction() as conn:
            if acknowledged:
                await conn.execute(ACKNOWLEDGE_SETS, (stream_id, list(acknowledged)))
            cursor = await conn.execute(SELECT_WAITING, (stream_id, limit + 1))
            rows = await cursor.fetchall()
        waiting = [WaitingSET(jti, json.loads(claims), at) for jti, claims, at in rows]
        return waiting[:limit], len(waiting) > limit

    async def poll_queue_purge(self, before: float) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(DELETE_OLD_SETS, (before,))
        return cursor.rowcount

    async def events_cursor(self, name: str) -> int | None:
        async with self.connection() as conn:
            cursor = await conn.execute("SELECT seq FROM ssf_cursors WHERE name = %s", (name,))
            row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def events_cursor_move(self, name: str, expected: int | None, seq: int) -> bool:
        async with self.connection() as conn:
            if expected is None:
                cursor = await conn.execute(
                    "INSERT INTO ssf_cursors (name, seq) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, seq),
                )
            else:
                cursor = await conn.execute(
                    "UPDATE ssf_cursors SET seq = %s WHERE name = %s AND seq = %s",
                    (seq, name, expected),
                )
        return cursor.rowcount == 1


def _stream(row: Sequence[object]) -> StreamRecord:
    return StreamRecord(**fields_of(StreamRecord, row, _STREAM_JSON))
