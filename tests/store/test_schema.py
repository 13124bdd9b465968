"""Both backends' schemas: the same numbered migrations, recorded in `schema_version`; replicas
starting together on a new PostgreSQL database migrate it once; a database from a newer
bridge is refused, one that needs migrating is refused when the deployment migrates
separately; SQLite's version 2 files gain the housekeeping indexes without losing a row;
version 5 databases gain the approval pages' tables, their tasks the key of their subject;
`bridge db status|migrate` against PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bridge.store.contract import Store, subject_key
from bridge.store.postgres import PostgresStore, Target
from bridge.store.postgres import migrations as pg_migrations
from bridge.store.postgres.connection import PASSWORD_ENVIRONMENT
from bridge.store.schema import SchemaBehind, SchemaTooNew
from bridge.store.sqlite import SQLiteStore
from bridge.store.sqlite import migrations as sqlite_migrations
from tests.conftest import REPO
from tests.store.conftest import POOL, Backend
from tests.store.records import T0, audit_event
from tests.support.postgres import PostgresDatabase, PostgresServer

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture
def fresh(postgres: PostgresServer) -> Iterator[PostgresDatabase]:
    """An empty database of its own (the contract suite's are migrated already)."""
    database = postgres.create_database("schema")
    try:
        yield database
    finally:
        postgres.drop_database(database.database)


def versions(database: PostgresDatabase) -> list[int]:
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    return [row[0] for row in rows]


def test_both_backends_number_their_migrations_alike() -> None:
    def listed(migrations: tuple[object, ...]) -> list[tuple[object, object]]:
        return [(m.version, m.description) for m in migrations]  # type: ignore[attr-defined]

    assert listed(pg_migrations.MIGRATIONS) == listed(sqlite_migrations.MIGRATIONS)
    assert pg_migrations.LATEST == sqlite_migrations.LATEST == len(sqlite_migrations.MIGRATIONS)


async def test_replicas_starting_together_migrate_a_new_database_once(
    fresh: PostgresDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    target = Target.from_url(fresh.url)
    stores = [PostgresStore(target, pool=POOL) for _ in range(5)]
    with caplog.at_level(logging.INFO, logger="bridge.store"):
        await asyncio.gather(*(s.open() for s in stores))
    try:
        assert versions(fresh) == [m.version for m in pg_migrations.MIGRATIONS]
        applied = [r.getMessage() for r in caplog.records if "schema migrated" in r.getMessage()]
        assert applied == [
            f"schema migrated to version {m.version}" for m in pg_migrations.MIGRATIONS
        ]
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    # Opened again: nothing left to do.
    again = PostgresStore(target, pool=POOL)
    await again.open()
    await again.close()
    assert versions(fresh) == [m.version for m in pg_migrations.MIGRATIONS]


async def test_a_database_from_a_newer_bridge_is_refused(backend: Backend) -> None:
    store = await backend.open()
    await store.close()
    backend.opened.remove(store)
    backend.rows(
        "INSERT INTO schema_version VALUES (?, 'from the future', 0)",
        sqlite_migrations.LATEST + 1,
    )
    with pytest.raises(SchemaTooNew, match=f"this bridge knows up to {sqlite_migrations.LATEST}"):
        await backend.make().open()
    backend.rows("DELETE FROM schema_version WHERE version > ?", sqlite_migrations.LATEST)


async def test_without_migrate_on_start_a_behind_database_is_refused(
    fresh: PostgresDatabase, tmp_path: Path
) -> None:
    with pytest.raises(SchemaBehind, match="run `bridge db migrate`"):
        await PostgresStore(Target.from_url(fresh.url), migrate=False).open()
    with pytest.raises(SchemaBehind, match="run `bridge db migrate`"):
        await SQLiteStore(tmp_path / "db.sqlite3", migrate=False).open()
    assert versions_or_none(fresh) is None  # refused, not migrated


async def test_a_version_2_sqlite_file_gains_the_indexes_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        db.execute(sqlite_migrations._VERSION_TABLE)
        for migration in sqlite_migrations.MIGRATIONS[:2]:
            for statement in migration.statements:
                db.execute(statement)
            if migration.apply is not None:
                migration.apply(db)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
        db.execute("INSERT INTO revoked_access_tokens VALUES ('jti-1', 1.0)")
        db.execute("COMMIT")
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.is_access_token_revoked("jti-1")
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        recorded = [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY 1")]
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert recorded == [m.version for m in sqlite_migrations.MIGRATIONS]
    assert {"access_requests_retention", "outbox_age", "revoked_access_tokens_expiry"} <= indexes


# Tasks filed before version 6, with the subjects their keys are made from.
FILED_BEFORE_6 = {
    "arq-1": {"type": "user", "id": "ålice", "properties": {"department": "sales"}},
    "arq-2": {"type": "user", "id": "bob"},
    "arq-3": {"id": "no-type"},
}
INSERT_TASK_AT_5 = (
    "INSERT INTO access_requests (id, pdp, requester, bundle, subject, context, items, "
    "requested_access, callback, client, status, created_at, expires_at, retain_until, "
    "updated_at, version) VALUES (?, 'pdp', 'pep-1', ?, ?, '{}', '[]', NULL, NULL, NULL, "
    "'pending', ?, ?, ?, ?, 1)"
)
INSERT_OUTBOX_AT_5 = (
    "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) "
    "VALUES ('task_terminal', ?, ?, ?)"
)


def fill_version_5(execute: Callable[..., object]) -> None:
    """A task per subject of `FILED_BEFORE_6`, and an outbox row, as version 5 kept them."""
    for n, (task_id, subject) in enumerate(FILED_BEFORE_6.items()):
        created = T0 + n
        execute(
            INSERT_TASK_AT_5,
            task_id,
            False,
            json.dumps(subject),
            created,
            T0 + 99,
            T0 + 99,
            created,
        )
    execute(INSERT_OUTBOX_AT_5, b"waiting", T0, T0)


async def assert_version_6(store: Store, rows: Callable[..., list[tuple[Any, ...]]]) -> None:
    versions = [r[0] for r in rows("SELECT version FROM schema_version ORDER BY 1")]
    assert 6 in versions and versions == list(range(1, sqlite_migrations.LATEST + 1))
    keys = dict(rows("SELECT id, subject_key FROM access_requests"))
    assert keys == {task_id: subject_key(subject) for task_id, subject in FILED_BEFORE_6.items()}
    assert keys["arq-1"] == '["user","\\u00e5lice"]'  # json.dumps spells it so
    assert keys["arq-3"] == '[null,"no-type"]'
    alice = subject_key(FILED_BEFORE_6["arq-1"])
    [found] = await store.tasks_of_subject(alice, None, 10)
    assert (found.id, found.subject) == ("arq-1", FILED_BEFORE_6["arq-1"])
    assert [t.id for t in await store.tasks_recent(None, None, 10)] == ["arq-3", "arq-2", "arq-1"]
    # The outbox row is still due, without a key; keys are taken from now on.
    assert rows("SELECT dedupe_key FROM outbox") == [(None,)]
    [row] = await store.claim_outbox(T0, 10, lease_seconds=60)
    assert (row.kind, row.payload) == ("task_terminal", b"waiting")
    assert await store.enqueue("notice", b"n", T0, dedupe_key="k")
    assert not await store.enqueue("notice", b"n", T0, dedupe_key="k")
    # The audit trail starts empty, at the head the migration made.
    assert await store.audit_head() is None
    await store.audit_append([audit_event()])
    head = await store.audit_head()
    assert head is not None and head.seq == 1


async def test_a_version_5_sqlite_file_migrates_to_6(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        db.execute(sqlite_migrations._VERSION_TABLE)
        for migration in sqlite_migrations.MIGRATIONS[:5]:
            for statement in migration.statements:
                db.execute(statement)
            if migration.apply is not None:
                migration.apply(db)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
        fill_version_5(lambda query, *args: db.execute(query, args))
        db.execute("COMMIT")

    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute(query, args).fetchall()

    store = SQLiteStore(path)
    await store.open()
    try:
        await assert_version_6(store, rows)
    finally:
        await store.close()


async def test_a_version_5_postgres_database_migrates_to_6(fresh: PostgresDatabase) -> None:
    with psycopg.connect(fresh.url) as conn:  # one transaction, committed at the end
        conn.execute(pg_migrations._VERSION_TABLE)
        for migration in pg_migrations.MIGRATIONS[:5]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (%s, %s, %s)",
                (migration.version, migration.description, time.time()),
            )
        fill_version_5(lambda query, *args: conn.execute(query.replace("?", "%s"), args))

    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(fresh.url) as conn:
            return conn.execute(query.replace("?", "%s"), args).fetchall()

    store = PostgresStore(Target.from_url(fresh.url), pool=POOL)
    await store.open()
    try:
        await assert_version_6(store, rows)
    finally:
        await store.close()


def bridge(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "db", *args, "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


def test_bridge_db_status_and_migrate_on_postgres(fresh: PostgresDatabase, tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    without_password = f"postgresql://{fresh.user}@{fresh.host}:{fresh.port}/{fresh.database}"
    config.write_text(f'[storage]\nurl = "{without_password}"\nmigrate_on_start = false\n')
    env = {PASSWORD_ENVIRONMENT: fresh.password}

    status = bridge(config, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"database {without_password}" in status.stdout
    latest = pg_migrations.MIGRATIONS[-1]
    assert f"schema version 0 (this bridge knows {latest.version})" in status.stdout
    assert f"pending {latest.version}: {latest.description}" in status.stdout
    assert versions_or_none(fresh) is None  # status changes nothing

    migrated = bridge(config, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {latest.version} (up to date)" in migrated.stdout
    assert "pending" not in bridge(config, "status", env=env).stdout

    refused = bridge(config, "status", env={PASSWORD_ENVIRONMENT: "not-the-password-31337"})
    assert refused.returncode == 1
    assert "password authentication failed" in refused.stderr
    assert without_password in refused.stderr
    for output in (status, migrated, refused):
        assert fresh.password not in output.stdout + output.stderr
        assert "not-the-password-31337" not in output.stdout + output.stderr


def versions_or_none(database: PostgresDatabase) -> list[int] | None:
    with psycopg.connect(database.url) as conn:
        exists = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    return None if exists is None or exists[0] is None else versions(database)
