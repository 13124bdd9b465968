"""The user's own decision on a CIBA request, and how it settles the request's deferral.

A CIBA deferral is settled only when both have said yes: the user (her decision, in the
store: `store.contract.ciba`) and, when an access request was filed, the access request
(approved, then decided again with the approvals: `deferral.reevaluation`). Whichever comes
last settles it; a decline or a denial ends it at once (`access_denied`). The deferral part
knows nothing of CIBA: its snapshot names this consent (`{"consent": {"by": "ciba", "id":
<request id>}}`), and `consent` below is what `DeferralService.require_consent` asks.

    she answers on her page → compare-and-set from `pending`, with a `ciba_decided` outbox row
    in the same transaction → the row's handler (`on_decided`) settles the deferral by its code
    hash (a task still pending: nothing yet, its end settles it) → on a decline, the access
    request nobody waits on any more is cancelled

An access request that ends first finds her consent missing and leaves the deferral pending;
her answer then finds the request ended. Each side reads the other after writing its own, so
one of them settles it; the store's compare-and-set makes sure only one does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..deferral.assembly import Deferrals
from ..deferral.models import CONSENT_MEMBER
from ..front_door.person import Person
from ..outbox import Delivered, Outcome
from ..store.contract import CibaRequestRecord, CibaRequestStore, DeferralRecord, DeferralStore
from ..store.contract.ciba import APPROVED, DECLINED
from ..store.contract.outbox import OutboxRow

log = logging.getLogger("bridge.ciba")

CONSENT_BY = "ciba"
CIBA_DECIDED = "ciba_decided"


class Store(CibaRequestStore, DeferralStore, Protocol):
    """The CIBA requests, and the deferrals they consent to."""


def consent_member(request_id: str) -> dict[str, dict[str, Any]]:
    """The snapshot member that makes a deferral wait for the user's decision."""
    return {CONSENT_MEMBER: {"by": CONSENT_BY, "id": request_id}}


def request_id_of(record: DeferralRecord) -> str | None:
    wanted = record.snapshot.get(CONSENT_MEMBER)
    found = wanted.get("id") if isinstance(wanted, dict) else None
    return found if isinstance(found, str) else None


class UserDecisions:
    def __init__(
        self,
        store: Store,
        deferrals: Deferrals,
        *,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._deferrals = deferrals
        self._clock = clock
        self._wake = wake
        deferrals.service.require_consent(CONSENT_BY, self.consent)

    async def consent(self, deferral: DeferralRecord) -> bool | None:
        """Whether the user agreed to `deferral`: True, False (she declined), None (not yet,
        or her request is not stored yet)."""
        request_id = request_id_of(deferral)
        found = await self._store.ciba_request_get(request_id) if request_id else None
        if found is None or found.code_hash != deferral.code_hash:
            return None
        return {APPROVED: True, DECLINED: False}.get(found.status)

    async def decide(
        self, request_id: str, person: Person, approve: bool
    ) -> CibaRequestRecord | None:
        """Her answer, taken once (None: not hers, already answered, or expired)."""
        now = self._clock()
        decided = await self._store.ciba_request_decide(
            request_id,
            subject_type=person.subject_type,
            subject_id=person.name,
            status=APPROVED if approve else DECLINED,
            now=now,
            outbox=[(CIBA_DECIDED, request_id.encode("utf-8"), now)],
        )
        if decided is not None:
            log.info("CIBA request %s %s by %s", request_id, decided.status, person.name)
            if self._wake is not None:
                self._wake()
        return decided

    async def on_decided(self, row: OutboxRow) -> Outcome:
        """Outbox handler for `ciba_decided` rows (payload: the request id)."""
        record = await self._store.ciba_request_get(row.payload.decode("utf-8"))
        if record is None:
            return Delivered()  # purged: its deferral ended long ago
        deferral = await self._store.deferral_find(record.code_hash)
        settled = await self._deferrals.settle(record.code_hash)
        log.info("CIBA request %s: deferral %s", record.id, "settled" if settled else "waits")
        if record.status == DECLINED and deferral is not None and deferral.task_id is not None:
            try:
                await self._deferrals.filing.abandon(deferral.task_id)
            except Exception as exc:  # already ended: nothing to cancel
                log.info("access request %s not cancelled: %s", deferral.task_id, exc)
        return Delivered()
