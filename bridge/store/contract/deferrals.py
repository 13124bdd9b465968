"""The deferral side of the store contract: one record per deferral code of a Deferred Token
Response (DTR), its states, and what the deferral service asks of a store.

A record is found by `code_hash` (a keyed hash: the code itself is never stored). The code is
kept sealed only while a ping or a repeated request may still have to carry it, and the
client's notification token likewise; both are dropped when the deferral leaves `pending`,
and so is `dedupe_key` (the keyed hash of the request that lets a repeated request find the
pending deferral: AROP §3, "idempotent submission"). Every state change is one transaction,
so a poll, a resolution, a redemption and a cancellation of one code never interleave, also
across processes and replicas sharing the database.

States (DTR §11 as the bridge reads it):

    pending ──resolve ok──> resolved_ok ──redeem (compare-and-set)──> redeemed
       │  └──resolve deny──> denied
       ├──cancel──> cancelled          (resolved_ok --cancel--> cancelled as well)
       └──time──> expired              (resolved_ok --time--> expired as well)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .access_requests import subject_key

_T = TypeVar("_T")

PENDING = "pending"
RESOLVED_OK = "resolved_ok"
DENIED = "denied"
CANCELLED = "cancelled"
REDEEMED = "redeemed"
EXPIRED = "expired"
# Deferrals that can still end in a token (or be cancelled); the others are final.
LIVE = (PENDING, RESOLVED_OK)
FINAL = (DENIED, CANCELLED, REDEEMED, EXPIRED)

# The outbox kind of a ping, queued by `deferral_resolve` in the resolving transaction.
PING_KIND = "deferral_ping"


@dataclass(frozen=True, slots=True)
class DeferralRecord:
    code_hash: str  # HMAC-SHA-256 of the code under a server key (hex)
    client_id: str
    jkt: str | None  # RFC 7638 thumbprint of the DPoP key the code is bound to
    snapshot_json: str  # what is needed to finish the original token request (opaque here)
    task_id: str | None  # the ARAP access request that decides it
    status: str
    created_at: float
    expires_at: float
    interval: int  # seconds, as sent in the deferred response
    required_gap: float  # the least gap between polls accepted now (interval + slow_downs)
    last_poll_at: float | None = None
    slow_down_count: int = 0  # consecutive `slow_down` answers
    notification_endpoint: str | None = None
    code_sealed: bytes | None = None  # only while a ping or a repeat may still carry it
    notification_token_sealed: bytes | None = None
    resolution_json: str | None = None  # {"approved_until": ..., "approvals": [...]}
    resolved_at: float | None = None
    # Keyed hash of the request (client, DPoP key, principal, details, scope, resource), so
    # that the same request again gets this deferral's code; only while `pending`.
    dedupe_key: str | None = None
    # `subject_key` of the principal the token is asked for (`snapshot_subject_key`), so
    # that a subject's deferrals are found (a revoked session ends them).
    subject_key: str | None = None

    @property
    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.snapshot_json)
        return data

    @property
    def resolution(self) -> dict[str, Any] | None:
        if self.resolution_json is None:
            return None
        data: dict[str, Any] = json.loads(self.resolution_json)
        return data


def snapshot_subject_key(snapshot: Mapping[str, Any]) -> str | None:
    """The key of the principal a deferral's snapshot names (`principal.subject`, as the
    deferral part writes it), if it names one."""
    principal = snapshot.get("principal")
    subject = principal.get("subject") if isinstance(principal, Mapping) else None
    return subject_key(subject) if isinstance(subject, Mapping) else None


def snapshot_text_subject_key(snapshot_json: str) -> str | None:
    """`snapshot_subject_key` of a snapshot as stored (JSON text); None when it is not one."""
    try:
        snapshot = json.loads(snapshot_json)
    except ValueError:
        return None
    return snapshot_subject_key(snapshot) if isinstance(snapshot, dict) else None


# Builds the sealed ping payload (and its `not_before`) from a row about to be resolved; None
# when no ping is due. Runs inside the resolving transaction.
PingBuilder = Callable[[DeferralRecord], tuple[bytes, float] | None]


class DeferralStore(Protocol):
    """What the deferral service needs from a store."""

    async def deferral_create(self, record: DeferralRecord) -> None: ...

    async def deferral_find(self, code_hash: str) -> DeferralRecord | None: ...

    async def deferral_find_pending(
        self, client_id: str, dedupe_key: str, not_before: float
    ) -> DeferralRecord | None:
        """The pending deferral of `client_id` filed for the request with `dedupe_key` that
        ends at `not_before` or later (the longest-lived one), if any."""
        ...

    async def deferral_poll(
        self, code_hash: str, step: Callable[[DeferralRecord], tuple[DeferralRecord, _T]]
    ) -> tuple[_T, str | None] | None:
        """Poll bookkeeping: `step` gets the current record and returns the record as it
        should be after this poll (status, throttle fields) and its verdict, in one
        transaction. Returns (verdict, the task id when this poll ended the deferral and no
        other live deferral waits on that task); None for an unknown code."""
        ...

    async def deferral_resolve(
        self,
        code_hash: str,
        *,
        ok: bool,
        resolution: Mapping[str, Any],
        now: float,
        ping: PingBuilder,
    ) -> bool:
        """`pending` → `resolved_ok` (ok) or `denied`, and the ping queued in the same
        transaction. False (nothing stored) when the record is no longer pending or has
        expired; an expired record is marked so."""
        ...

    async def deferral_redeem(self, code_hash: str, now: float) -> bool:
        """Compare-and-set `resolved_ok` → `redeemed`: of concurrent callers exactly one
        wins."""
        ...

    async def deferral_deny(self, code_hash: str) -> bool:
        """`resolved_ok` → `denied` (a precondition failed at redemption)."""
        ...

    async def deferral_cancel(self, code_hash: str, now: float) -> tuple[bool, str | None]:
        """A live deferral → `cancelled` (`expired` when past its end). Returns (changed,
        the task id when no other live deferral still waits on that task)."""
        ...

    async def deferrals_pending_of_task(self, task_id: str) -> list[DeferralRecord]: ...

    async def deferral_counts(self) -> dict[str, int]:
        """Deferrals by state (only the states some deferral is in), for the metrics."""
        ...

    async def deferrals_expire(
        self, now: float, *, limit: int, purge_before: float
    ) -> tuple[int, list[str]]:
        """Live deferrals past their end → `expired` (at most `limit`), and final records
        that ended before `purge_before` deleted. Returns (how many expired, the task ids
        no live deferral waits on any more)."""
        ...
