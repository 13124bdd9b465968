"""The SQLite plumbing every table group of the embedded store shares.

All statements run on one dedicated thread (SQLite connections are not shared between
threads, and one writer at a time is what SQLite does anyway), so the event loop never
blocks on disk. WAL mode lets other processes (`bridge keys rotate`, a restarted server)
work beside a running one; a busy timeout covers the short write locks.

Each group of tables is a mixin with a `SCHEMA` list; the store runs every mixin's schema.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, TypeVar

_T = TypeVar("_T")


class SQLiteBase:
    SCHEMA: ClassVar[list[str]] = []

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a killed process loses nothing committed; a power cut at most
        # the last commits, never consistency.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        with transaction(db):
            for cls in reversed(type(self).__mro__):
                for statement in cls.__dict__.get("SCHEMA", []):
                    db.execute(statement)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: never a half-written change."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
