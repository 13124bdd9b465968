"""The leases table on PostgreSQL (rules: `store.contract.leases`).

The upsert takes the row's lock, so of two replicas asking at once the second sees the
first's lease and is refused.
"""

from __future__ import annotations

from .connection import PostgresBase

HOLD = (
    "INSERT INTO leases (name, holder, expires_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE leases.holder = excluded.holder OR leases.expires_at <= %s RETURNING holder"
)


class LeaseTables(PostgresBase):
    async def lease_hold(self, name: str, holder: str, now: float, seconds: float) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(HOLD, (name, holder, now + seconds, now))
            return await cursor.fetchone() is not None
