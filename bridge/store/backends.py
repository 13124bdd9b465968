"""The store backend a deployment configured: SQLite (`storage.path`, the embedded default, one
process) or PostgreSQL (`storage.url`, one database for every replica). The only module that
picks one; parts see `store.contract.Store`."""

from __future__ import annotations

import sqlite3

import psycopg

from ..settings import Settings
from .contract import Store
from .postgres import PoolBounds, PostgresStore, Target
from .postgres import migrations as postgres_migrations
from .postgres.connection import DatabaseUnavailable
from .schema import SchemaBehind
from .sqlite import SQLiteStore
from .sqlite import migrations as sqlite_migrations

__all__ = [
    "SchemaBehind",
    "database_exists",
    "describe",
    "postgres_target",
    "schema_status",
    "store_for",
]


def postgres_target(settings: Settings) -> Target | None:
    """The PostgreSQL database of `storage.url`, with its password; None for SQLite."""
    storage = settings.storage
    if storage.url is None:
        return None
    password_file = None
    if storage.password_file is not None:
        password_file = settings.resolve(storage.password_file)
    return Target.from_url(storage.url.get_secret_value(), password_file=password_file)


def store_for(settings: Settings, *, migrate: bool | None = None) -> Store:
    """The configured store, not yet opened (`await store.open()` connects and, unless
    `migrate` or `storage.migrate_on_start` says no, migrates)."""
    storage = settings.storage
    if migrate is None:
        migrate = storage.migrate_on_start
    target = postgres_target(settings)
    if target is not None:
        bounds = PoolBounds(
            storage.pool_min_size, storage.pool_max_size, storage.pool_timeout_seconds
        )
        return PostgresStore(target, pool=bounds, migrate=migrate)
    return SQLiteStore(settings.resolve(storage.path), migrate=migrate)


def database_exists(settings: Settings) -> bool:
    """Whether the configured database is there already (opening a SQLite store makes its file;
    a PostgreSQL database is the operator's, and always counts as there)."""
    if postgres_target(settings) is not None:
        return True
    return settings.resolve(settings.storage.path).exists()


def describe(settings: Settings) -> str:
    """The configured database, for messages: a file, or a URL without its password."""
    target = postgres_target(settings)
    if target is not None:
        return target.display
    return str(settings.resolve(settings.storage.path))


def schema_status(settings: Settings) -> tuple[int, int, list[tuple[int, str]]]:
    """(recorded version, latest version known, the pending migrations), read without
    changing anything; a database that does not exist yet (or has no tables) is at 0."""
    target = postgres_target(settings)
    if target is not None:
        version = _postgres_version(target, settings.storage.pool_timeout_seconds)
        return _status(version, postgres_migrations.LATEST, postgres_migrations.MIGRATIONS)
    path = settings.resolve(settings.storage.path)
    version = 0
    if path.exists():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if exists:
                row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
                version = int(row[0] or 0)
        finally:
            db.close()
    return _status(version, sqlite_migrations.LATEST, sqlite_migrations.MIGRATIONS)


def _postgres_version(target: Target, timeout: float) -> int:
    try:
        with psycopg.connect(target.conninfo, **target.connect_kwargs(timeout)) as conn:
            return postgres_migrations.status(conn)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot read {target.display}: {target.redact(str(exc)).strip()}"
        ) from None


def _status(
    version: int,
    latest: int,
    migrations: tuple[sqlite_migrations.Migration, ...] | tuple[postgres_migrations.Migration, ...],
) -> tuple[int, int, list[tuple[int, str]]]:
    return version, latest, [(m.version, m.description) for m in migrations if m.version > version]
