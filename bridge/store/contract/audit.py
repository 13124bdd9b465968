"""The audit side of the store contract: an append-only, hash-chained log of what happened to
access requests and the approvals they granted.

Each entry names the hash of the entry before it, and its own hash covers its sequence
number, its time, what happened, to which request, by whom, the details and that previous
hash. Edit an entry and its hash no longer matches; insert or remove one and a sequence
number is skipped or a `prev_hash` no longer names its predecessor. The store also keeps the
head of the chain (the last sequence number and hash) in a record of its own, written in the
same transaction as every append, so that cutting entries off the end shows as well.

Entries are written in the transaction of the change they record (a task filed, decided,
expired, an approval revoked), so the log never says something happened that did not, nor
misses something that did. The chain is computed by the store inside that transaction: two
replicas appending at once take turns (one chain, no fork).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import rfc8785

JSON = Any

# `prev_hash` of the first entry.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An entry to append: what happened (`event`), to which access request, by whom."""

    at: float  # epoch seconds
    event: str  # filed, notified, approved, denied, revoked, expired, cancelled, ...
    task_id: str | None
    actor: str | None  # who acted: an approver, "operator", "policy", "system", a requester
    data: JSON  # details of the event (a JSON object)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An entry as stored: the event, its place in the chain and its hash."""

    seq: int  # 1, 2, 3, ... without gaps
    at: float
    event: str
    task_id: str | None
    actor: str | None
    data: JSON
    prev_hash: str  # the hash of entry seq - 1 (GENESIS_HASH for seq 1)
    hash: str  # entry_hash(...) of this entry


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The last entry's sequence number and hash, as the store recorded them."""

    seq: int
    hash: str


def entry_hash(
    seq: int,
    at: float,
    event: str,
    task_id: str | None,
    actor: str | None,
    data: JSON,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical form of the entry's members and `prev_hash`.

    Canonical JSON, so that the same entry hashes alike whichever backend stored it and
    whatever order its `data` members come back in."""
    canonical = rfc8785.dumps(
        {
            "seq": seq,
            "at": at,
            "event": event,
            "task_id": task_id,
            "actor": actor,
            "data": data,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(canonical).hexdigest()


def chained(events: Sequence[AuditEvent], head: AuditHead | None) -> list[AuditEntry]:
    """The entries `events` become after `head` (None: an empty log). Backends call this
    inside the appending transaction, with the head they read there under a lock."""
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    out = []
    for event in events:
        seq += 1
        digest = entry_hash(
            seq, event.at, event.event, event.task_id, event.actor, event.data, prev
        )
        out.append(
            AuditEntry(
                seq, event.at, event.event, event.task_id, event.actor, event.data, prev, digest
            )
        )
        prev = digest
    return out


class AuditStore(Protocol):
    async def audit_append(self, events: Sequence[AuditEvent]) -> None:
        """Append events that go with no other change (a notification sent, a request
        re-evaluated), in one transaction."""
        ...

    async def audit_entries(
        self,
        *,
        after_seq: int = 0,
        since: float | None = None,
        task_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries with `seq > after_seq` (and `at >= since`, and of `task_id`, when given),
        in sequence order, at most `limit`."""
        ...

    async def audit_head(self) -> AuditHead | None:
        """The head the store recorded with the last append; None before the first."""
        ...
