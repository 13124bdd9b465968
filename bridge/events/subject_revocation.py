"""CAEP `session-revoked` and `credential-change` about a person: whatever the bridge gave them
on the strength of their session ends, in one store transaction (`subject_revoke`):

- their pending deferrals are denied (the client's next poll answers `access_denied`; a
  client that asked for pings is pinged), and so are those approved but not yet redeemed;
- their approvals in force are revoked, and the access tokens issued under them;
- their refresh tokens are revoked (each family: a rotation racing the revocation saves its
  new token revoked);
- their access tokens issued until now answer `active: false` at introspection (the record
  is kept while such a token could still be valid);
- the audit trail records it (`subject_revoked`, and `revoked` for each approval, naming the
  event as the source).

Then the access requests only those deferrals waited on are cancelled. A subject the bridge
cannot tell (another issuer's `iss_sub`, a complex subject naming a session or a device) is
acknowledged and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ..access_requests import audit_events
from ..access_requests.subject_events import SubjectEvents
from ..deferral.service import DeferralService
from ..store.contract import ApprovalRecord, AuditEvent, SubjectRevocation, SubjectStore
from ..store.contract.access_requests import subject_key
from . import event_audit
from .incoming import Incoming

log = logging.getLogger("bridge.events")


class RevokeSubject:
    def __init__(
        self,
        store: SubjectStore,
        requests: SubjectEvents,
        deferrals: DeferralService | None,
        *,
        keep_seconds: float,
        clock: Callable[[], float],
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`keep_seconds`: the longest an access token lives (the record of a subject's
        revoked tokens is kept that long)."""
        self._store = store
        self._requests = requests
        self._deferrals = deferrals
        self._keep = keep_seconds
        self._clock = clock
        self._wake = wake

    def check(self, incoming: Incoming) -> None:
        return None  # CAEP defines no member these events must carry for this

    async def __call__(self, incoming: Incoming) -> None:
        person = incoming.person()
        if person is None:
            log.info(
                "%s from %s names no subject the bridge knows: nothing to revoke",
                incoming.event.event_type,
                incoming.transmitter.name,
            )
            return
        by, source, reason = incoming.approver.key, incoming.source, incoming.reason()
        now = self._clock()

        def revoked(approval: ApprovalRecord) -> AuditEvent:
            event = audit_events.revoked(approval, by, reason or "session revoked", now)
            return replace(event, data={**event.data, "source": source})

        done = await self._store.subject_revoke(
            SubjectRevocation(
                subject_key=subject_key(person.as_json()),
                token_sub=person.id,
                at=now,
                keep_until=now + self._keep,
                audit=[
                    event_audit.subject_revoked(
                        person, by, source, reason, incoming.first_of_txn, now
                    )
                ],
                approval_audit=revoked,
                ping=self._deferrals.pings(now) if self._deferrals is not None else None,
                deferral_resolution={"approved_until": None, "approvals": []},
            )
        )
        if done.pings and self._wake is not None:
            self._wake()
        for task_id in done.orphaned_tasks:
            await self._requests.abandon(task_id, incoming.approver)
        log.info(
            "%s %s revoked by %s from %s: %d approval(s), %d deferral(s), %d refresh token(s)",
            person.type,
            person.id,
            incoming.event.event_type.rsplit("/", 1)[-1],
            incoming.transmitter.name,
            len(done.approvals),
            done.deferrals,
            done.refresh_tokens,
        )
