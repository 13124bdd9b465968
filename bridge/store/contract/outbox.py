"""The outbox side of the store contract: side effects (pings, callbacks, internal follow-ups)
written in the same transaction as the state change that causes them, delivered later.

A row is claimed with a lease (its `next_attempt_at` pushed past the lease) so that two
workers, or two replicas, never deliver it at once, and a worker that dies mid-delivery leaves
it due again when the lease runs out: a crash loses no side effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    payload: bytes  # opaque to the store (sealed by the caller when it holds secrets)
    attempts: int
    created_at: float


# (kind, payload, not_before) of an outbox row queued together with a change.
OutboxEntry = tuple[str, bytes, float]


class OutboxStore(Protocol):
    async def enqueue(
        self, kind: str, payload: bytes, not_before: float, dedupe_key: str | None = None
    ) -> bool:
        """Queue a side effect on its own (no state change goes with it). With a
        `dedupe_key`, at most one row ever holds that key (delivered or not, until purged):
        False, and nothing queued, when one does. Two replicas deciding to send the same
        message queue it once."""
        ...

    async def claim_outbox(self, now: float, limit: int, lease_seconds: float) -> list[OutboxRow]:
        """Rows due at `now`, each leased for `lease_seconds` (its attempt counted)."""
        ...

    async def outbox_done(self, row_id: int) -> None:
        """Delivered: the row keeps no payload (it may hold a deferral code)."""
        ...

    async def outbox_retry(self, row_id: int, next_attempt_at: float, error: str) -> None: ...

    async def outbox_failed(self, row_id: int, error: str) -> None: ...

    async def outbox_purge(self, before: float) -> None:
        """Forget delivered and given-up rows created before `before`."""
        ...

    async def outbox_counts(self) -> dict[str, int]:
        """Rows by status (`pending`, `done`, `failed`)."""
        ...
