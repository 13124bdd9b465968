"""The transmitter's fan-out: each housekeeping pass reads the audit trail past its cursor,
makes the events of each entry (`outgoing_events`) and queues one SET per event and stream
that wants it (its `events_delivered`, its subjects), then moves the cursor.

A push stream's SET is an outbox row (`ssf_push`, delivered by `push_delivery` with the
outbox's retries) under the dedupe key of its `jti`; a poll stream's waits in the store's
poll queue under `(stream, jti)`. A SET's `jti` is derived from the entry, the event's place
among the entry's and the stream, so a pass run twice (a crash before the cursor moved, two
replicas at once) queues nothing twice: exactly one SET per event and stream. A stream
carries the events of entries after its creation only; a disabled one none (SSF §8.1.2), a
paused one holds them (`push_delivery`, `poll_endpoint`).

Verification events (SSF §8.1.4) are queued the same way, at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..settings import EventReceiverPeerSettings
from ..store.contract import AuditStore, EventStreamStore, OutboxStore, StreamRecord, TaskStore
from ..store.contract.events import DISABLED, SubjectStore
from .outgoing_events import OutgoingEvent, events_of
from .streams import PUSH
from .subject_identifiers import matches

log = logging.getLogger("bridge.events")

CURSOR = "transmitter"
PUSH_KIND = "ssf_push"
BATCH = 200


class Store(EventStreamStore, AuditStore, OutboxStore, TaskStore, SubjectStore, Protocol):
    """The streams, the audit trail they are fed from, the outbox push deliveries go
    through, and what events are completed with."""


def set_jti(seq: int, n: int, stream_id: str) -> str:
    digest = hashlib.sha256(f"{seq}:{n}:{stream_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


class FanOut:
    def __init__(
        self,
        store: Store,
        issuer: str,
        receivers: Mapping[str, EventReceiverPeerSettings],
        *,
        default_all: bool,
        clock: Callable[[], float],
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._receivers = receivers
        self._default_all = default_all
        self._clock = clock
        self._wake = wake

    async def start_point(self) -> int:
        """Where a stream made now starts: after the last entry of the audit trail."""
        head = await self._store.audit_head()
        return head.seq if head is not None else 0

    async def run(self) -> int:
        """One pass: queue the events of the entries past the cursor; how many SETs."""
        cursor = await self._store.events_cursor(CURSOR)
        streams = [s for s in await self._store.streams_all() if s.status != DISABLED]
        if cursor is None:
            # A transmitter begins with the events of changes made from now on, or from the
            # start of its oldest stream.
            start = min([s.after_seq for s in streams], default=await self.start_point())
            if not await self._store.events_cursor_move(CURSOR, None, start):
                return 0  # another process began at the same moment
            cursor = start
        entries = await self._store.audit_entries(after_seq=cursor, limit=BATCH)
        if not entries:
            return 0
        # Each stream's subjects, parsed once for the whole batch.
        subjects = {
            s.id: [
                (json.loads(c), inc) for c, inc in (await self._store.stream_subjects(s.id)).items()
            ]
            for s in streams
        }
        queued = 0
        for entry in entries:
            if not any(entry.seq > s.after_seq for s in streams):
                continue
            for n, event in enumerate(await events_of(entry, self._issuer, self._store)):
                for stream in streams:
                    if (
                        entry.seq > stream.after_seq
                        and event.event_type in stream.events_delivered
                        and self._carries(subjects[stream.id], event.sub_id)
                    ):
                        jti = set_jti(entry.seq, n, stream.id)
                        queued += await self.queue(stream, jti, self._claims(stream, jti, event))
        if not await self._store.events_cursor_move(CURSOR, cursor, entries[-1].seq):
            log.info("another process moved the transmitter's cursor first")
        if queued:
            log.info("%d SET(s) queued for %d audit entries", queued, len(entries))
            self.woken()
        return queued

    async def queue(self, stream: StreamRecord, jti: str, claims: dict[str, Any]) -> int:
        """Queue one SET for `stream`; 1 when it was not queued before."""
        if stream.config["delivery"]["method"] == PUSH:
            payload = json.dumps({"stream": stream.id, "claims": claims}).encode("utf-8")
            added = await self._store.enqueue(
                PUSH_KIND, payload, self._clock(), dedupe_key=f"ssf-push:{jti}"
            )
        else:
            added = await self._store.poll_queue_add(stream.id, jti, claims, self._clock())
        return int(added)

    def woken(self) -> None:
        """Tell the outbox worker that push SETs were queued (rather than at its next look)."""
        if self._wake is not None:
            self._wake()

    def claims(
        self, stream: StreamRecord, jti: str, event_type: str, sub_id: dict[str, Any],
        event: dict[str, Any], txn: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The claims of a SET on `stream` (SSF 1.0 §4): no `sub`, no `exp`."""
        receiver = self._receivers.get(stream.receiver)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "jti": jti,
            "iat": int(self._clock()),
            "aud": receiver.audience if receiver is not None else stream.receiver,
            "sub_id": sub_id,
            "events": {event_type: event},
        }
        if txn is not None:
            claims["txn"] = txn
        return claims

    def _claims(self, stream: StreamRecord, jti: str, event: OutgoingEvent) -> dict[str, Any]:
        return self.claims(stream, jti, event.event_type, event.sub_id, event.event, event.txn)

    def _carries(self, subjects: list[tuple[Any, bool]], sub_id: dict[str, Any]) -> bool:
        """SSF §8.1.3: a subject the receiver removed is not carried; one it added is; any
        other as `default_subjects` says."""
        added = False
        for subject, included in subjects:
            if matches(subject, sub_id):
                if not included:
                    return False
                added = True
        return added or self._default_all


def _parsed(subjects: Mapping[str, bool]) -> list[tuple[Any, bool]]:
    """A stream's subjects (canonical JSON text → included) as values to match against."""
    return [(json.loads(canonical), included) for canonical, included in subjects.items()]
