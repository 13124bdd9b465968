"""The access request side of the store contract (ARAP): tasks, the approvals they granted,
idempotency keys and the binding tokens already used.

Every state change of a task is one transaction with an optimistic check (`WHERE status =
'pending' AND version = ?`): two approvers deciding at once leave exactly one outcome, and the
loser learns it lost (and reads the task again). The side effects of an outcome (the internal
`task_terminal` follow-up, an ARAP callback) are queued in the outbox inside that same
transaction, so an outcome is never recorded without them, nor they without it.

Records hold decoded JSON; what the values mean is the access request service's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = Any


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    pdp: str  # the store whose policies denied (its PDP identifier)
    requester: str
    bundle: bool  # submitted with `items`
    subject: JSON
    context: JSON
    items: list[JSON]  # [{resource, action, status, template, denial, result?, ...}]
    requested_access: JSON | None
    callback: JSON | None
    client: JSON | None
    status: str
    created_at: float
    expires_at: float  # a pending task expires then
    retain_until: float  # the handle works until then (later than expires_at once decided)
    updated_at: float
    version: int = 1


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    id: str
    task_id: str
    item: int
    pdp: str
    template: str
    members: list[str]  # authorization-relevant context members bound
    binding_hash: str  # of the approved subject, resource, action and context (ARAP §5)
    binding: JSON  # the same values in clear, for audit
    approved_at: float
    approved_until: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    requester: str
    key: str
    body_hash: str
    task_id: str
    keep_until: float


@dataclass(frozen=True, slots=True)
class TaskChange:
    """One compare-and-set transition of a pending task."""

    task_id: str
    expected_version: int
    status: str
    items: list[JSON]
    updated_at: float
    retain_until: float
    approvals: list[ApprovalRecord] = field(default_factory=list)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # (kind, payload)


class IdempotencyConflict(Exception):
    """The requester used the key before, for a different body."""


class BindingReused(Exception):
    """A binding token's `jti` was already submitted."""


class TaskStore(Protocol):
    async def task_insert(
        self,
        task: TaskRecord,
        idempotency: IdempotencyRecord | None,
        binding_jtis: Sequence[tuple[str, float]],
    ) -> tuple[TaskRecord, bool]:
        """Store a new task, or return the one an equal earlier submission made (False).

        Raises `IdempotencyConflict` (same key, other body) or `BindingReused`; nothing is
        written then."""
        ...

    async def idempotency_find(
        self, requester: str, key: str, now: float
    ) -> IdempotencyRecord | None: ...

    async def task_get(self, task_id: str) -> TaskRecord | None: ...

    async def task_update(self, change: TaskChange) -> bool:
        """Apply `change` if the task is still pending at `expected_version`; False if not."""
        ...

    async def tasks_pending(self, limit: int) -> list[TaskRecord]:
        """Pending tasks, oldest first."""
        ...

    async def tasks_past_expiry(self, now: float, limit: int) -> list[TaskRecord]:
        """Pending tasks whose `expires_at` has passed."""
        ...

    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]: ...

    async def approval_revoke(self, approval_id: str, now: float) -> bool:
        """Mark a granted approval revoked; False when unknown or already revoked."""
        ...

    async def tasks_purge(self, now: float, keep_seconds: float) -> None:
        """Forget what no longer works: handles `keep_seconds` past their retention,
        approvals past `approved_until` as long, idle idempotency keys, spent binding jtis."""
        ...
