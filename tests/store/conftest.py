"""Fixtures of the store contract suite: every test runs once per backend, against a real
database (a SQLite file in the test's folder; a database of the private PostgreSQL server
that `tests.support` starts, emptied after each test).

- `backend`: which one, how to open more stores on the same database (two replicas), and
  `rows()` to read it from outside through a connection of its own;
- `store`: an opened store of that backend.

Test modules enable the server fixtures with `pytest_plugins = ["tests.support.plugin"]`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bridge.store.contract import Store
from bridge.store.contract.audit import GENESIS_HASH
from bridge.store.postgres import PoolBounds, PostgresStore, Target
from bridge.store.sqlite import SQLiteStore
from tests.support.postgres import PostgresDatabase

BACKENDS = ["sqlite", "postgres"]
POOL = PoolBounds(min_size=1, max_size=4, timeout_seconds=10.0)


@dataclass
class Backend:
    name: str
    make: Callable[[], Store]  # another store on the same database, not yet opened
    rows: Callable[..., list[tuple[Any, ...]]]  # (query with ? marks, *args): every row
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        """Another opened store on this test's database (another process, another replica)."""
        store = self.make()
        await store.open()
        self.opened.append(store)
        return store


def sqlite_backend(path: Path) -> Backend:
    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as db:
            return db.execute(query, args).fetchall()

    return Backend("sqlite", lambda: SQLiteStore(path), rows)


def postgres_backend(database: PostgresDatabase) -> Backend:
    target = Target.from_url(database.url)

    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(database.url, autocommit=True) as conn:
            cursor = conn.execute(query.replace("?", "%s"), args)
            return cursor.fetchall() if cursor.description else []

    return Backend("postgres", lambda: PostgresStore(target, pool=POOL), rows)


def empty(database: PostgresDatabase) -> None:
    """Every table of the bridge emptied (the schema stays), for the next test; the audit
    trail's head, a row the migration makes, back at the empty log."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename NOT IN ('schema_version', 'audit_head')"
            ).fetchall()
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
        exists = conn.execute("SELECT to_regclass('audit_head') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute("UPDATE audit_head SET seq = 0, hash = %s", (GENESIS_HASH,))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = sqlite_backend(tmp_path / "store.sqlite3")
        database = None
    else:
        database = request.getfixturevalue("postgres_database")
        chosen = postgres_backend(database)
    try:
        yield chosen
    finally:
        for store in chosen.opened:
            await store.close()
        if database is not None:
            empty(database)


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
