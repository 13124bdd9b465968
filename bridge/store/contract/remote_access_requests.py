"""The remote access request side of the store contract: one record per access request the
bridge filed with a remote PDP's access request service (ARAP §6), so a client's poll is
answered from here and never costs a call to that service (AROP §4).

A row is written before the submission is first sent (its `Idempotency-Key` must survive a
retry), completed with the remote task handle, and refreshed by status reads. The change
that records a terminal status queues its outbox rows (the `task_terminal` follow-up) in the
same transaction, so a recorded outcome is never without them, nor they without it. Changes
are compare-and-set on the status: a late "pending" read never overwrites an outcome.

The callback `state` is kept only as its SHA-256 (`state_hash`): the value is a bearer
secret of the callback, and a leaked database must not let anyone forge callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .outbox import OutboxEntry

# Statuses the bridge gives a row itself; every other status is the remote task's own.
SUBMITTING = "submitting"  # written before the first attempt
SUBMIT_FAILED = "submit_failed"  # the service refused it, or never answered
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class RemoteTaskRecord:
    id: str  # the local id (`rtask_…`) deferrals wait on
    client_id: str  # the OAuth client it was filed for
    endpoint: str  # where it was submitted
    idempotency_key: str
    state_hash: str  # SHA-256 (hex) of the callback `state`
    item_count: int  # one item per denied evaluation; more than one = a bundle
    status: str
    created_at: float
    updated_at: float
    expires_at: float  # polling stops then; deferrals on it end no later
    remote_id: str | None = None
    status_endpoint: str | None = None
    cancel_endpoint: str | None = None  # `task.links.cancel`
    last_json: Any = None  # the last `{task, result?}` read from the service
    next_check_at: float | None = None  # None: not polled (not pending)
    checked_at: float | None = None
    checks: int = 0  # status reads so far: the backoff grows with them
    failures: int = 0  # status reads in a row that failed
    last_error: str | None = None


class RemoteTaskStore(Protocol):
    async def remote_task_insert(self, record: RemoteTaskRecord) -> None: ...

    async def remote_task_get(self, task_id: str) -> RemoteTaskRecord | None: ...

    async def remote_task_by_state(self, state_hash: str) -> RemoteTaskRecord | None: ...

    async def remote_task_update(
        self,
        task_id: str,
        expected: Sequence[str],
        values: Mapping[str, Any],
        outbox: Sequence[OutboxEntry] = (),
    ) -> bool:
        """Set `values` if the record's status is one of `expected`, and queue `outbox` with
        it; False (nothing written) when the record is gone or its status moved on.
        `ValueError` for a column that may not change (the identity columns)."""
        ...

    async def remote_tasks_claim_due(
        self, now: float, limit: int, lease_seconds: float
    ) -> list[RemoteTaskRecord]:
        """Pending records whose next check is due, oldest due first. Their
        `next_check_at` is pushed `lease_seconds` ahead in the same transaction, so two
        sweepers (or replicas) do not read the same task at once, and a sweeper that dies
        leaves them due again."""
        ...

    async def remote_tasks_purge(self, before: float) -> int:
        """Forget records that ended (or were due to end) before `before`: no deferral can
        wait on them any more, since a deferral never outlives its access request."""
        ...
