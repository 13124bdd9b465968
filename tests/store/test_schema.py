"""Both backends' schemas: the same numbered migrations, recorded in `schema_version`; replicas
starting together on a new PostgreSQL database migrate it once; a database from a newer
bridge is refused, one that needs migrating is refused when the deployment migrates
separately; SQLite's version 2 files gain the housekeeping indexes without losing a row;
`bridge db status|migrate` against PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bridge.store.postgres import PostgresStore, Target
from bridge.store.postgres import migrations as pg_migrations
from bridge.store.postgres.connection import PASSWORD_ENVIRONMENT
from bridge.store.schema import SchemaBehind, SchemaTooNew
from bridge.store.sqlite import SQLiteStore
from bridge.store.sqlite import migrations as sqlite_migrations
from tests.conftest import REPO
from tests.store.conftest import POOL, Backend
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
    assert pg_migrations.LATEST == sqlite_migrations.LATEST == 4


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
        assert applied == [f"schema migrated to version {v}" for v in (1, 2, 3, 4)]
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    # Opened again: nothing left to do.
    again = PostgresStore(target, pool=POOL)
    await again.open()
    await again.close()
    assert versions(fresh) == [1, 2, 3, 4]


async def test_a_database_from_a_newer_bridge_is_refused(backend: Backend) -> None:
    store = await backend.open()
    await store.close()
    backend.opened.remove(store)
    backend.rows(
        "INSERT INTO schema_version VALUES (?, 'from the future', 0)",
        sqlite_migrations.LATEST + 1,
    )
    with pytest.raises(SchemaTooNew, match="this bridge knows up to 4"):
        await backend.make().open()
    backend.rows("DELETE FROM schema_version WHERE version > 4")


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
    assert recorded == [1, 2, 3, 4]
    assert {"access_requests_retention", "outbox_age", "revoked_access_tokens_expiry"} <= indexes


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
    assert "schema version 0 (this bridge knows 4)" in status.stdout
    assert (
        "pending 4: the front door: requests, codes, sign-in throttle, sign-outs" in status.stdout
    )
    assert versions_or_none(fresh) is None  # status changes nothing

    migrated = bridge(config, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "schema version 4 (up to date)" in migrated.stdout
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
