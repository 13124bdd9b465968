"""The leases table on SQLite (rules: `store.contract.leases`)."""

from __future__ import annotations

from .connection import SQLiteBase, transaction

# One statement decides: the upsert changes the row only when the lease is free, ran out or
# is the caller's, and RETURNING says whether it did.
HOLD = (
    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE leases.holder = excluded.holder OR leases.expires_at <= ? RETURNING holder"
)


class LeaseTables(SQLiteBase):
    async def lease_hold(self, name: str, holder: str, now: float, seconds: float) -> bool:
        def work() -> bool:
            with transaction(self.db):
                return (
                    self.db.execute(HOLD, (name, holder, now + seconds, now)).fetchone() is not None
                )

        return await self._run(work)
