"""The store backend a deployment configured: SQLite (`storage.path`, the embedded default)."""

from __future__ import annotations

from ..settings import Settings
from .contract import Store
from .sqlite import SQLiteStore


def store_for(settings: Settings) -> Store:
    """The configured store, not yet opened (`await store.open()` connects and migrates)."""
    storage = settings.storage
    return SQLiteStore(settings.resolve(storage.path), migrate=storage.migrate_on_start)
