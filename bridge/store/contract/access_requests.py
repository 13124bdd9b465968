"""The access request side of the store contract (ARAP): tasks, the approvals they granted,
idempotency keys and the binding tokens already used.

Every state change of a task is one transaction with an optimistic check (`WHERE status =
'pending' AND version = ?`): two approvers deciding at once leave exactly one outcome, and the
loser learns it lost (and reads the task again). The side effects of an outcome (the internal
`task_terminal` follow-up, an ARAP callback) are queued in the outbox inside that same
transaction, so an outcome is never recorded without them, nor they without it.

Each of those transactions also appends the audit entries the service hands over
(`store.contract.audit`), so the audit trail and the state never disagree.

Records hold decoded JSON; what the values mean is the access request service's business.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .audit import AuditEvent

JSON = Any


def subject_key(subject: JSON) -> str:
    """The key a task is found by for the person (or system) whose access it asks for: the
    subject's type and id, as a JSON array (no separator to escape)."""
    kind = subject.get("type") if isinstance(subject, dict) else None
    ident = subject.get("id") if isinstance(subject, dict) else None
    return json.dumps([kind, ident], separators=(",", ":"))


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
    approved_by: str | None = None  # the approver's key (opaque here), for "granted by me"


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
    audit: list[AuditEvent] = field(default_factory=list)
    # Whether the task must be pending (the usual case) or may be in any status: a change to
    # a decided task's items (an emergency approval reviewed) is also one compare-and-set.
    only_pending: bool = True


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
        *,
        outbox: Sequence[tuple[str, bytes]] = (),
        audit: Sequence[AuditEvent] = (),
        approvals: Sequence[ApprovalRecord] = (),
    ) -> tuple[TaskRecord, bool]:
        """Store a new task, or return the one an equal earlier submission made (False).

        With a new task, in the same transaction: the `outbox` rows (not before the task's
        `created_at`), the `audit` entries and the `approvals` (a task approved at once, as
        an emergency). Raises `IdempotencyConflict` (same key, other body) or
        `BindingReused`; nothing is written then, and nothing when an earlier task is
        returned."""
        ...

    async def idempotency_find(
        self, requester: str, key: str, now: float
    ) -> IdempotencyRecord | None: ...

    async def task_get(self, task_id: str) -> TaskRecord | None: ...

    async def task_update(self, change: TaskChange) -> bool:
        """Apply `change` if the task is still at `expected_version` (and pending, when
        `change.only_pending`); False if not, and then nothing is written. The approvals,
        outbox rows and audit entries are written with it."""
        ...

    async def tasks_pending(self, limit: int) -> list[TaskRecord]:
        """Pending tasks, oldest first."""
        ...

    async def tasks_recent(
        self, statuses: Sequence[str] | None, before: float | None, limit: int
    ) -> list[TaskRecord]:
        """Tasks newest first (`created_at` descending, then `id`), of the given statuses
        (None: any), created strictly before `before` when given: one page of an inbox."""
        ...

    async def tasks_of_subject(
        self, key: str, before: float | None, limit: int
    ) -> list[TaskRecord]:
        """Tasks whose `subject_key(subject)` is `key`, newest first, created strictly
        before `before` when given: a person's own requests."""
        ...

    async def tasks_past_expiry(self, now: float, limit: int) -> list[TaskRecord]:
        """Pending tasks whose `expires_at` has passed."""
        ...

    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]: ...

    async def approval_revoke(
        self, approval_id: str, now: float, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Mark a granted approval revoked, and in the same transaction revoke every access
        token tied to it (`approval_tie_token`) and append `audit`. False when unknown or
        already revoked; nothing is written then."""
        ...

    async def approvals_granted_by(
        self, approved_by: str, now: float, limit: int
    ) -> list[ApprovalRecord]:
        """Approvals `approved_by` granted that are still in force (not revoked, `approved_until`
        after `now`), newest first."""
        ...

    async def approval_tie_token(
        self, approval_ids: Sequence[str], jti: str, expires_at: float
    ) -> bool:
        """Record that the access token `jti` (valid until `expires_at`) was issued under
        these approvals, so that revoking any of them revokes it. False when one of them was
        revoked already (or is unknown): the token is then revoked at once."""
        ...

    async def tasks_purge(self, now: float, keep_seconds: float) -> None:
        """Forget what no longer works: handles `keep_seconds` past their retention,
        approvals past `approved_until` as long, idle idempotency keys, spent binding jtis."""
        ...
