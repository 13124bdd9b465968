"""The Shared Signals side of the store contract: what the bridge keeps as an SSF transmitter
(its event streams, the subjects receivers added to or removed from them, the SETs waiting to
be polled, and how far into the audit trail its events have been queued) and what a received
event that revokes a subject changes (`subject_revoke`).

A stream's configuration is changed by compare-and-set on its `version`, as tasks are: two
receivers' requests (or two replicas) updating one stream leave one outcome. A SET waits for
a poll under `(stream, jti)` once, however often it is queued, and leaves the queue when the
receiver acknowledges it.

A subject's revocation is one transaction: its approvals in force revoked with the access
tokens tied to them, its live deferrals denied (a pending one's ping queued), its refresh
tokens revoked, and the record "access tokens of `token_sub` issued until `at` are revoked"
that introspection reads; with the audit entries of all of it. Either everything is
revoked, or nothing is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .access_requests import ApprovalRecord
from .audit import AuditEvent
from .deferrals import PingBuilder

JSON = Any

# SSF §8.1.2 stream statuses.
ENABLED = "enabled"
PAUSED = "paused"
DISABLED = "disabled"
STREAM_STATUSES = (ENABLED, PAUSED, DISABLED)


@dataclass(frozen=True, slots=True)
class StreamRecord:
    id: str
    receiver: str  # the configured receiver that created it (only it may see or change it)
    # Receiver-supplied members as the bridge keeps them: `delivery` (its `method` and, for
    # push, `endpoint_url`), `events_requested`, `description`.
    config: JSON
    events_delivered: list[str]
    status: str
    reason: str | None
    created_at: float
    updated_at: float
    # The audit entry the stream starts after: it carries events of later entries only.
    after_seq: int
    # A push stream's `authorization_header`, sealed (it is the receiver's credential).
    authorization_sealed: bytes | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class WaitingSET:
    """A SET queued for a poll stream: its `jti` and claims (signed when it is polled)."""

    jti: str
    claims: JSON
    created_at: float


# An audit entry for each approval a subject's revocation revokes (built inside the
# transaction, from the approval as it was).
ApprovalAudit = Callable[[ApprovalRecord], AuditEvent]


@dataclass(frozen=True, slots=True)
class SubjectRevocation:
    subject_key: str  # `subject_key` of whose approvals, deferrals and refresh tokens
    token_sub: str  # the `sub` claim of whose access tokens
    at: float  # access tokens issued (`iat`) up to this time are revoked
    keep_until: float  # when no access token issued before `at` can still be valid
    audit: Sequence[AuditEvent] = ()  # the revocation's own entries
    approval_audit: ApprovalAudit | None = None
    ping: PingBuilder | None = None  # for each deferral that was pending
    deferral_resolution: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubjectRevoked:
    approvals: list[ApprovalRecord]  # revoked now (as they were before)
    deferrals: int  # live deferrals denied
    refresh_tokens: int  # refresh tokens revoked
    pings: int  # pings queued
    # Access requests no live deferral waits on any more (their deferrals were denied).
    orphaned_tasks: list[str]


class EventStreamStore(Protocol):
    async def stream_create(self, record: StreamRecord) -> None: ...

    async def stream_get(self, stream_id: str) -> StreamRecord | None: ...

    async def streams_of_receiver(self, receiver: str) -> list[StreamRecord]:
        """The receiver's streams, oldest first."""
        ...

    async def streams_all(self) -> list[StreamRecord]:
        """Every stream, oldest first (the transmitter queues each event for each)."""
        ...

    async def stream_update(self, record: StreamRecord, expected_version: int) -> bool:
        """Store `record` (its `version` one more than `expected_version`) if the stream is
        still at `expected_version`; False, and nothing written, if not."""
        ...

    async def stream_delete(self, stream_id: str) -> bool:
        """The stream, its subjects and its waiting SETs gone; False when unknown."""
        ...

    async def stream_subject_set(self, stream_id: str, subject: str, included: bool) -> None:
        """Record that events about `subject` (a canonical Subject Identifier) are sent on
        the stream (added) or not (removed), whatever was recorded before."""
        ...

    async def stream_subjects(self, stream_id: str) -> dict[str, bool]:
        """The subjects added (True) to or removed (False) from the stream."""
        ...

    async def poll_queue_add(self, stream_id: str, jti: str, claims: JSON, now: float) -> bool:
        """Queue a SET for a poll stream; False (nothing queued) when it was queued before."""
        ...

    async def poll_queue_take(
        self, stream_id: str, acknowledged: Sequence[str], limit: int
    ) -> tuple[list[WaitingSET], bool]:
        """Drop the acknowledged SETs, then return the oldest `limit` still waiting and
        whether more wait, in one transaction."""
        ...

    async def poll_queue_purge(self, before: float) -> int:
        """Drop SETs queued before `before` that nobody polled; how many."""
        ...

    async def events_cursor(self, name: str) -> int | None:
        """The last audit entry the transmitter `name` queued events for; None at first."""
        ...

    async def events_cursor_move(self, name: str, expected: int | None, seq: int) -> bool:
        """Move the cursor from `expected` to `seq` (compare-and-set); False when another
        process moved it first."""
        ...


class SubjectStore(Protocol):
    async def subject_revoke(self, revocation: SubjectRevocation) -> SubjectRevoked:
        """Revoke everything of the subject in one transaction (the module's docstring)."""
        ...

    async def subject_revoked_until(self, token_sub: str) -> float | None:
        """The latest `at` of a revocation of `token_sub`'s access tokens still kept."""
        ...

    async def approvals_of_subject(self, subject_key: str, now: float) -> list[ApprovalRecord]:
        """The approvals in force granted for the access requests of a subject."""
        ...

    async def approvals_of_token(self, jti: str) -> list[ApprovalRecord]:
        """The approvals an access token was issued under (`approval_tie_token`)."""
        ...

    async def approval_token_ids(self, approval_id: str) -> list[tuple[str, float]]:
        """(jti, expires_at) of the access tokens issued under an approval."""
        ...

    async def subjects_purge(self, now: float) -> int:
        """Forget revocations of access tokens that have all expired; how many."""
        ...
