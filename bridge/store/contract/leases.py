"""The lease side of the store contract: named leases that one process holds at a time.

Work that must be done once however many processes share the database (housekeeping, on
`bridge serve --workers N` or on several replicas) is done by whichever process holds its
lease. The holder renews it on every turn; a holder that dies stops renewing, and the lease
passes to the next process that asks once it has run out.
"""

from __future__ import annotations

from typing import Protocol


class LeaseStore(Protocol):
    async def lease_hold(self, name: str, holder: str, now: float, seconds: float) -> bool:
        """Hold `name` for `holder` until `now + seconds`: True when it was free, ran out
        before `now`, or was already `holder`'s; False (and nothing changed) while another
        holder's lease runs."""
        ...
