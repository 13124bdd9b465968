"""The embedded backend of the store contract: one SQLite file (one process, or several
processes on one machine sharing the file)."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
