"""The store backend a deployment configured: SQLite (`storage.path`, the embedded default)."""

from __future__ import annotations

import sqlite3

from ..settings import Settings
from .contract import Store
from .sqlite import SQLiteStore
from .sqlite import migrations as sqlite_migrations
from .sqlite.connection import SchemaBehind


def store_for(settings: Settings, *, migrate: bool | None = None) -> Store:
    """The configured store, not yet opened (`await store.open()` connects and, unless
    `migrate` or `storage.migrate_on_start` says no, migrates)."""
    storage = settings.storage
    if migrate is None:
        migrate = storage.migrate_on_start
    return SQLiteStore(settings.resolve(storage.path), migrate=migrate)


def database_exists(settings: Settings) -> bool:
    """Whether the configured database is there already (opening a store makes it)."""
    return settings.resolve(settings.storage.path).exists()


def schema_status(settings: Settings) -> tuple[int, int, list[tuple[int, str]]]:
    """(recorded version, latest version known, the pending migrations), read without
    changing anything; a database that does not exist yet is at version 0."""
    path = settings.resolve(settings.storage.path)
    latest = sqlite_migrations.LATEST
    if not path.exists():
        return 0, latest, [(m.version, m.description) for m in sqlite_migrations.MIGRATIONS]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        version = 0
        if exists:
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = int(row[0] or 0)
    finally:
        db.close()
    pending = [
        (m.version, m.description) for m in sqlite_migrations.MIGRATIONS if m.version > version
    ]
    return version, latest, pending


__all__ = ["SchemaBehind", "database_exists", "schema_status", "store_for"]
