"""The SSF transmitter's tables on SQLite: event streams, their subjects, SETs waiting for a
poll, and the transmitter's cursor in the audit trail (records and rules:
`store.contract.events`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields

from ..columns import fields_of, row_of
from ..contract.events import StreamRecord, WaitingSET
from .connection import SQLiteBase, transaction

_STREAM_JSON = frozenset({"config", "events_delivered"})
_STREAM_COLUMNS = ", ".join(f.name for f in fields(StreamRecord))

INSERT_STREAM = (
    f"INSERT INTO ssf_streams ({_STREAM_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(fields(StreamRecord)))})"
)
SELECT_STREAM = f"SELECT {_STREAM_COLUMNS} FROM ssf_streams WHERE id = ?"
# Each answered from an index (tests/store/test_plans.py).
SELECT_STREAMS_OF = (
    f"SELECT {_STREAM_COLUMNS} FROM ssf_streams WHERE receiver = ? ORDER BY created_at, id"
)
SELECT_STREAMS = f"SELECT {_STREAM_COLUMNS} FROM ssf_streams ORDER BY created_at, id"
UPDATE_STREAM = (
    "UPDATE ssf_streams SET config = ?, events_delivered = ?, status = ?, reason = ?, "
    "updated_at = ?, authorization_sealed = ?, version = ? WHERE id = ? AND version = ?"
)
SET_SUBJECT = (
    "INSERT INTO ssf_stream_subjects (stream_id, subject, included) VALUES (?, ?, ?) "
    "ON CONFLICT (stream_id, subject) DO UPDATE SET included = excluded.included"
)
QUEUE_SET = (
    "INSERT INTO ssf_poll_queue (stream_id, jti, claims, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (stream_id, jti) DO NOTHING"
)
ACKNOWLEDGE_SET = "DELETE FROM ssf_poll_queue WHERE stream_id = ? AND jti = ?"
SELECT_WAITING = (
    "SELECT jti, claims, created_at FROM ssf_poll_queue WHERE stream_id = ? "
    "ORDER BY created_at, jti LIMIT ?"
)
DELETE_OLD_SETS = "DELETE FROM ssf_poll_queue WHERE created_at < ?"


class StreamTables(SQLiteBase):
    async def stream_create(self, record: StreamRecord) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(INSERT_STREAM, row_of(record, _STREAM_JSON))

        await self._run(work)

    async def stream_get(self, stream_id: str) -> StreamRecord | None:
        def work() -> StreamRecord | None:
            row = self.db.execute(SELECT_STREAM, (stream_id,)).fetchone()
            return None if row is None else _stream(row)

        return await self._run(work)

    async def streams_of_receiver(self, receiver: str) -> list[StreamRecord]:
        def work() -> list[StreamRecord]:
            return [_stream(row) for row in self.db.execute(SELECT_STREAMS_OF, (receiver,))]

        return await self._run(work)

    async def streams_all(self) -> list[StreamRecord]:
        return await self._run(lambda: [_stream(row) for row in self.db.execute(SELECT_STREAMS)])

    async def stream_update(self, record: StreamRecord, expected_version: int) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
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

        return await self._run(work)

    async def stream_delete(self, stream_id: str) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute("DELETE FROM ssf_streams WHERE id = ?", (stream_id,))
                self.db.execute("DELETE FROM ssf_stream_subjects WHERE stream_id = ?", (stream_id,))
                self.db.execute("DELETE FROM ssf_poll_queue WHERE stream_id = ?", (stream_id,))
            return cursor.rowcount == 1

        return await self._run(work)

    async def stream_subject_set(self, stream_id: str, subject: str, included: bool) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(SET_SUBJECT, (stream_id, subject, int(included)))

        await self._run(work)

    async def stream_subjects(self, stream_id: str) -> dict[str, bool]:
        def work() -> dict[str, bool]:
            rows = self.db.execute(
                "SELECT subject, included FROM ssf_stream_subjects WHERE stream_id = ?",
                (stream_id,),
            )
            return {subject: bool(included) for subject, included in rows}

        return await self._run(work)

    async def poll_queue_add(self, stream_id: str, jti: str, claims: object, now: float) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(QUEUE_SET, (stream_id, jti, json.dumps(claims), now))
            return cursor.rowcount == 1

        return await self._run(work)

    async def poll_queue_take(
        self, stream_id: str, acknowledged: Sequence[str], limit: int
    ) -> tuple[list[WaitingSET], bool]:
        def work() -> tuple[list[WaitingSET], bool]:
            with transaction(self.db):
                self.db.executemany(ACKNOWLEDGE_SET, [(stream_id, jti) for jti in acknowledged])
                rows = self.db.execute(SELECT_WAITING, (stream_id, limit + 1)).fetchall()
            waiting = [WaitingSET(jti, json.loads(claims), at) for jti, claims, at in rows]
            return waiting[:limit], len(waiting) > limit

        return await self._run(work)

    async def poll_queue_purge(self, before: float) -> int:
        def work() -> int:
            with transaction(self.db):
                return self.db.execute(DELETE_OLD_SETS, (before,)).rowcount

        return await self._run(work)

    async def events_cursor(self, name: str) -> int | None:
        def work() -> int | None:
            row = self.db.execute("SELECT seq FROM ssf_cursors WHERE name = ?", (name,)).fetchone()
            return None if row is None else int(row[0])

        return await self._run(work)

    async def events_cursor_move(self, name: str, expected: int | None, seq: int) -> bool:
        def work() -> bool:
            with transaction(self.db):
                if expected is None:
                    cursor = self.db.execute(
                        "INSERT INTO ssf_cursors (name, seq) VALUES (?, ?) "
                        "ON CONFLICT (name) DO NOTHING",
                        (name, seq),
                    )
                else:
                    cursor = self.db.execute(
                        "UPDATE ssf_cursors SET seq = ? WHERE name = ? AND seq = ?",
                        (seq, name, expected),
                    )
            return cursor.rowcount == 1

        return await self._run(work)


def _stream(row: Sequence[object]) -> StreamRecord:
    return StreamRecord(**fields_of(StreamRecord, row, _STREAM_JSON))
