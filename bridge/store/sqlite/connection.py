"""The SQLite plumbing every table group of the embedded store shares.

All statements run on one dedicated thread (SQLite connections are not shared between
threads, and one writer at a time is what SQLite does anyway), so the event loop never
blocks on disk. WAL mode lets other processes (`bridge keys rotate`, a restarted server)
work beside a running one; a busy timeout covers the short write locks.

Each group of tables is a mixin; the schema they share is `migrations.py`, applied when the
store opens (unless the deployment migrates separately, with `bridge db migrate`).

The database and its `-wal` and `-shm` files hold sealed keys and pending requests: the file
is made mode 0600 before SQLite opens it (SQLite gives its side files the database file's
mode), and a folder the bridge makes for it 0700.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..schema import SchemaBehind
from . import migrations

log = logging.getLogger("bridge.store")

_T = TypeVar("_T")

__all__ = ["SQLiteBase", "SchemaBehind", "transaction"]


class SQLiteBase:
    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        self.path = path
        self.migrate = migrate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        _create_private(self.path)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a killed process loses nothing committed; a power cut at most
        # the last commits, never consistency.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with transaction(db):
                if self.migrate:
                    for applied in migrations.migrate(db):
                        log.info("schema migrated to version %d", applied.version)
                elif migrations.pending(db):
                    raise SchemaBehind(
                        f"the database at {self.path} needs schema version "
                        f"{migrations.LATEST}: run `bridge db migrate`"
                    )
        except BaseException:
            db.close()
            raise
        self._db = db

    async def ping(self) -> None:
        await self._run(lambda: self.db.execute("SELECT 1").fetchone())

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


def _create_private(path: Path) -> None:
    """Make the database file 0600 (and a missing folder 0700) before SQLite opens it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "the database %s is readable by others (mode %o); it holds sealed keys and "
                "pending requests: chmod 600 it",
                path,
                mode,
            )
