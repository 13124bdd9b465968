"""The store contract: every record, state, error and interface that the parts of the bridge
use to keep state between requests. Services and `app` type against these only; each backend
(`store.sqlite`, `store.postgres`) implements all of them, and one contract test suite
(`tests/store/`) runs against every backend.

Nothing secret is kept in clear: codes, secrets and refresh tokens are looked up by hash,
and what must be sent again is sealed before it reaches a store.
"""

from __future__ import annotations

from typing import Protocol

from .access_requests import (
    ApprovalRecord,
    BindingReused,
    IdempotencyConflict,
    IdempotencyRecord,
    TaskChange,
    TaskRecord,
    TaskStore,
    subject_key,
)
from .audit import AuditEntry, AuditEvent, AuditHead, AuditStore, entry_hash
from .ciba import CibaRequestRecord, CibaRequestStore
from .deferrals import DeferralRecord, DeferralStore, PingBuilder
from .events import (
    EventStreamStore,
    StreamRecord,
    SubjectRevocation,
    SubjectRevoked,
    SubjectStore,
    WaitingSET,
)
from .front_door import (
    AuthorizationCodeRecord,
    AuthorizationCodeStore,
    AuthorizationRequestRecord,
    AuthorizationRequestStore,
    CodeUse,
    EndedSessions,
    FrontDoorStore,
    LoginThrottle,
)
from .leases import LeaseStore
from .oauth import (
    RefreshTokenRecord,
    RefreshTokenStore,
    ReplayCache,
    RevocationStore,
    SigningKeyRecord,
    SigningKeyStore,
)
from .outbox import OutboxEntry, OutboxRow, OutboxStore
from .remote_access_requests import RemoteTaskRecord, RemoteTaskStore


class Store(
    ReplayCache,
    SigningKeyStore,
    RefreshTokenStore,
    RevocationStore,
    DeferralStore,
    CibaRequestStore,
    TaskStore,
    RemoteTaskStore,
    OutboxStore,
    LeaseStore,
    FrontDoorStore,
    AuditStore,
    EventStreamStore,
    SubjectStore,
    Protocol,
):
    """All of it, with the connection's life: what `app` opens at start and closes at the
    end, and what `/readyz` asks."""

    async def open(self) -> None:
        """Connect, and bring the schema up to date unless told not to (migrations)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the database cannot answer now (for `/readyz`)."""
        ...


__all__ = [
    "ApprovalRecord",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditStore",
    "AuthorizationCodeRecord",
    "AuthorizationCodeStore",
    "AuthorizationRequestRecord",
    "AuthorizationRequestStore",
    "BindingReused",
    "CibaRequestRecord",
    "CibaRequestStore",
    "CodeUse",
    "DeferralRecord",
    "DeferralStore",
    "EndedSessions",
    "EventStreamStore",
    "FrontDoorStore",
    "IdempotencyConflict",
    "IdempotencyRecord",
    "LeaseStore",
    "LoginThrottle",
    "OutboxEntry",
    "OutboxRow",
    "OutboxStore",
    "PingBuilder",
    "RefreshTokenRecord",
    "RefreshTokenStore",
    "RemoteTaskRecord",
    "RemoteTaskStore",
    "ReplayCache",
    "RevocationStore",
    "SigningKeyRecord",
    "SigningKeyStore",
    "Store",
    "StreamRecord",
    "SubjectRevocation",
    "SubjectRevoked",
    "SubjectStore",
    "TaskChange",
    "TaskRecord",
    "TaskStore",
    "WaitingSET",
    "entry_hash",
    "subject_key",
]
