"""The shared backend of the store contract: one PostgreSQL database for any number of
replicas (`storage.url`)."""

from .connection import DatabaseUnavailable, PoolBounds, Target
from .store import PostgresStore

__all__ = ["DatabaseUnavailable", "PoolBounds", "PostgresStore", "Target"]
