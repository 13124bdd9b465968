"""Schema version 8 (Shared Signals) on databases made by version 7, on both backends: the
deferrals and refresh tokens kept before it gain the key of their subject (from the
deferral's snapshot, the refresh token's grant), so a revocation of that subject finds
them."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bridge.store.contract import Store, SubjectRevocation
from bridge.store.postgres import PostgresStore, Target
from bridge.store.postgres import migrations as pg_migrations
from bridge.store.sqlite import SQLiteStore
from bridge.store.sqlite import migrations as sqlite_migrations
from tests.store.conftest import POOL
from tests.store.records import DAY, T0
from tests.support.postgres import PostgresDatabase, PostgresServer

pytest_plugins = ["tests.support.plugin"]

ALICE = {"type": "user", "id": "alice", "properties": {"act": {"sub": "agent"}}}
INSERT_DEFERRAL = (
    "INSERT INTO deferrals (code_hash, client_id, snapshot_json, task_id, status, created_at, "
    "expires_at, interval, required_gap) VALUES (?, 'agent', ?, NULL, 'pending', ?, ?, 5, 5)"
)
INSERT_REFRESH = (
    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, grant_json, issued_at, "
    "expires_at) VALUES (?, ?, 'agent', ?, ?, ?)"
)


@pytest.fixture
def fresh(postgres: PostgresServer) -> Iterator[PostgresDatabase]:
    database = postgres.create_database("schema8")
    try:
        yield database
    finally:
        postgres.drop_database(database.database)


def fill_version_7(execute: Callable[..., object]) -> None:
    snapshot = {"grant_type": "token-exchange", "principal": {"subject": ALICE}}
    execute(INSERT_DEFERRAL, "code-alice", json.dumps(snapshot), T0, T0 + DAY)
    execute(INSERT_DEFERRAL, "code-nobody", '{"grant_type": "x"}', T0, T0 + DAY)
    execute(INSERT_REFRESH, "rt-alice", "family-1", json.dumps({"subject": ALICE}), T0, T0 + DAY)
    execute(INSERT_REFRESH, "rt-odd", "family-2", "not json", T0, T0 + DAY)


async def assert_version_8(store: Store, rows: Callable[..., list[tuple[Any, ...]]]) -> None:
    assert rows("SELECT MAX(version) FROM schema_version") == [(8,)]
    assert dict(rows("SELECT code_hash, subject_key FROM deferrals")) == {
        "code-alice": '["user","alice"]',
        "code-nobody": None,
    }
    assert dict(rows("SELECT token_hash, subject_key FROM refresh_tokens")) == {
        "rt-alice": '["user","alice"]',
        "rt-odd": None,
    }
    done = await store.subject_revoke(
        SubjectRevocation('["user","alice"]', "alice", T0 + 10, T0 + DAY)
    )
    assert (done.deferrals, done.refresh_tokens) == (1, 1)


async def test_a_version_7_sqlite_file_migrates_to_8(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        db.execute(sqlite_migrations._VERSION_TABLE)
        for migration in sqlite_migrations.MIGRATIONS[:7]:
            for statement in migration.statements:
                db.execute(statement)
            if migration.apply is not None:
                migration.apply(db)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
        fill_version_7(lambda query, *args: db.execute(query, args))
        db.execute("COMMIT")

    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute(query, args).fetchall()

    store = SQLiteStore(path)
    await store.open()
    try:
        await assert_version_8(store, rows)
    finally:
        await store.close()


async def test_a_version_7_postgres_database_migrates_to_8(fresh: PostgresDatabase) -> None:
    async with await psycopg.AsyncConnection.connect(fresh.url) as conn:
        await conn.execute(pg_migrations._VERSION_TABLE)
        for migration in pg_migrations.MIGRATIONS[:7]:
            for statement in migration.statements:
                await conn.execute(statement)
            if migration.apply is not None:
                await migration.apply(conn)
            await conn.execute(
                "INSERT INTO schema_version VALUES (%s, %s, %s)",
                (migration.version, migration.description, time.time()),
            )
        for query, args in _statements():
            await conn.execute(query.replace("?", "%s"), args)
        await conn.commit()

    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(fresh.url) as sync:
            return sync.execute(query.replace("?", "%s"), args).fetchall()

    store = PostgresStore(Target.from_url(fresh.url), pool=POOL)
    await store.open()
    try:
        await assert_version_8(store, rows)
    finally:
        await store.close()


def _statements() -> list[tuple[str, tuple[Any, ...]]]:
    found: list[tuple[str, tuple[Any, ...]]] = []
    fill_version_7(lambda query, *args: found.append((query, args)))
    return found
