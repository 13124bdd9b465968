"""Deferred Token Responses (shared/specs/dtr.md): issuing deferral codes, answering polls,
redemption, cancellation, resolution once the access request has ended, and expiry.

The token endpoint owns the HTTP side: it authenticates the client and verifies the DPoP
proof, then calls `repeat` (the same request again: answer 400 with the pending deferral's
body) or `defer` (answer 400 with the returned body), `poll` (on the deferred grant),
`redeem` (after its re-check of a ready poll) and `cancel` (revocation with the
deferral-code hint). The access-request side calls `resolve_task` when a task ends; whoever
a deferral's consent names (`require_consent`: CIBA's user) calls `settle` when she answers;
the app calls `expire_due` now and then and registers `deliver_ping` for outbox rows
`deferral_ping`.
"""

from __future__ import annotations

import json
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ..access_requests.lifecycle import TASK_TERMINAL
from ..errors import InvalidGrant
from ..oauth.clients import Client
from ..outbound import Resolver, system_resolver
from ..outbox import Outcome
from ..settings import DeferralSettings
from ..store.contract import OutboxRow, OutboxStore
from ..store.contract.deferrals import (
    PENDING,
    DeferralRecord,
    PingBuilder,
    snapshot_subject_key,
)
from .answers import check_binding, error_for
from .codes import MAX_CODE_LENGTH, DeferralKeys, SealError, new_code
from .models import (
    CONSENT_MEMBER,
    DEFERRAL_CODE_HANDLE,
    Consent,
    DeferralExpired,
    DeferralStore,
    PollResult,
    Resolution,
    check_notification_token,
    handle_of,
)
from .ping import PingSender, ping_payload
from .pkce import PKCEFailed, check_first_poll
from .throttle import PollRules, Verdict, poll_step

log = logging.getLogger("bridge.deferral")

# `decide(snapshot, task_id)`: re-evaluate one deferral's snapshot now that its task ended
# (or, without a task, now that its consent came); None while the task has not ended.
Decide = Callable[[dict[str, Any], str | None], Awaitable[Resolution | None]]

# Unknown and other clients' codes must look the same (dtr.md §4.2 step 2).
_UNKNOWN = "unknown deferral code"

_Polled = tuple[Verdict, DeferralRecord]


class Store(DeferralStore, OutboxStore, Protocol):
    """The deferrals, and the outbox their follow-ups go through."""


class DeferralService:
    def __init__(
        self,
        store: Store,
        kek: bytes,
        settings: DeferralSettings,
        *,
        allow_private_callbacks: bool = False,
        clock: Callable[[], float] = time.time,
        on_queued: Callable[[], None] | None = None,
        retain_seconds: float = 86_400.0,
        ping_verify: ssl.SSLContext | bool = True,
        ping_resolver: Resolver = system_resolver,
    ) -> None:
        """`on_queued` is told when a ping was queued (e.g. `OutboxWorker.wake`); final rows
        are deleted `retain_seconds` after their code's end (`expire_due`)."""
        self._store = store
        self._keys = DeferralKeys(kek)
        self._settings = settings
        self._clock = clock
        self._on_queued = on_queued
        self._retain = retain_seconds
        self._consents: dict[str, Consent] = {}
        self._rules = PollRules(
            slow_down_seconds=settings.slow_down_seconds,
            tolerance_seconds=settings.poll_tolerance_seconds,
            max_slow_downs=settings.max_slow_downs,
        )
        self._pings = PingSender(
            store,
            self._keys,
            allow_private=allow_private_callbacks,
            clock=clock,
            verify=ping_verify,
            resolver=ping_resolver,
        )

    # -- the deferred response --------------------------------------------------------------

    async def defer(
        self,
        client: Client,
        jkt: str | None,
        snapshot: Mapping[str, Any],
        task_id: str | None,
        task_expires_at: float | None,
        notification_token: str | None,
        *,
        dedupe_key: str | None = None,
        ping: bool = True,
        notification_endpoint: str | None = None,
        max_lifetime: float | None = None,
    ) -> dict[str, Any]:
        """Store a new deferral; returns the body of the deferred response (HTTP 400).
        With `dedupe_key` (`request_key` of the request), the same request asked again while
        this deferral is pending gets its code back (`repeat`). `ping=False`: never ping
        for it (a deferral made at the authorization endpoint); `notification_endpoint`:
        ping there rather than at the client's DTR endpoint; `max_lifetime`: a shorter life
        (CIBA's `requested_expiry`). `ValueError` when the task ends too soon to defer."""
        check_notification_token(notification_token)
        now = self._clock()
        lifetime = float(self._settings.code_lifetime_seconds)
        if max_lifetime is not None:
            lifetime = min(lifetime, max_lifetime)
        if task_expires_at is not None:
            lifetime = min(lifetime, task_expires_at - now)
        expires_in = math.floor(lifetime)
        if expires_in < 1:
            raise ValueError("the access request ends too soon for a deferral")
        code = new_code()
        code_hash = self._keys.code_hash(code)
        endpoint = (notification_endpoint or client.notification_endpoint) if ping else None
        interval = self._settings.interval_seconds
        await self._store.deferral_create(
            DeferralRecord(
                code_hash=code_hash,
                client_id=client.client_id,
                jkt=jkt,
                snapshot_json=json.dumps(snapshot, separators=(",", ":")),
                task_id=task_id,
                status=PENDING,
                created_at=now,
                expires_at=now + expires_in,
                interval=interval,
                required_gap=float(interval),
                notification_endpoint=endpoint,
                # Kept (sealed) only when a ping or a repeated request will have to carry
                # them; dropped when the deferral leaves `pending`.
                code_sealed=(
                    self._keys.seal_code(code_hash, code) if endpoint or dedupe_key else None
                ),
                notification_token_sealed=(
                    self._keys.seal_notification_token(code_hash, notification_token)
                    if endpoint and notification_token
                    else None
                ),
                dedupe_key=dedupe_key,
                # A revoked session ends every deferral of its subject (bridge.events).
                subject_key=snapshot_subject_key(snapshot),
            )
        )
        return {
            "error": "authorization_pending",
            "deferral_code": code,
            "expires_in": expires_in,
            "interval": interval,
        }

    def code_hash(self, code: str) -> str:
        """The keyed hash the store finds `code`'s deferral by."""
        return self._keys.code_hash(code)

    def request_key(self, canonical: bytes) -> str:
        """The dedupe key of a request, from its canonical form (RFC 8785 JSON of what
        identifies it): a keyed hash, so the store never holds the request in it."""
        return self._keys.dedupe_key(canonical)

    async def repeat(
        self,
        client: Client,
        jkt: str | None,
        dedupe_key: str,
        same: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any] | None:
        """AROP §3, idempotent submission: the deferred response again for the client's
        pending deferral filed with `dedupe_key` (same code, the whole seconds it has left,
        same interval), or None when there is none to give (file a new one then).

        `same(snapshot)` confirms that the stored deferral was made for this very request.
        The deferral keeps its notification token, throttle state and access request.
        Not atomic with `defer`: two identical requests at the same moment may both get
        None and file two access requests."""
        now = self._clock()
        # At least one whole second left: `expires_in` is never 0.
        record = await self._store.deferral_find_pending(client.client_id, dedupe_key, now + 1)
        if record is None or record.jkt != jkt or record.code_sealed is None:
            return None
        if not same(record.snapshot):
            log.warning("a deferral's dedupe key does not match its snapshot; filing anew")
            return None
        try:
            code = self._keys.unseal_code(record.code_hash, record.code_sealed)
        except SealError:
            log.error("the sealed code of a pending deferral cannot be opened; filing anew")
            return None
        return {
            "error": "authorization_pending",
            "deferral_code": code,
            "expires_in": math.floor(record.expires_at - now),
            "interval": record.interval,
        }

    # -- polling (grant_type=urn:ietf:params:oauth:grant-type:deferred) ---------------------

    async def poll(
        self,
        client: Client,
        code: str,
        jkt: str | None,
        verifier: str | None = None,
        *,
        handle: str = DEFERRAL_CODE_HANDLE,
    ) -> PollResult:
        """A poll by the authenticated `client` with the DPoP key `jkt` (None: no proof) and
        the PKCE `verifier` it sent, of a code it knows as `handle` (a polling grant redeems
        only its own kind of code). Returns when the deferral is approved; raises the OAuth
        error to answer otherwise (`PKCEFailed` having ended the deferral)."""
        record = await self._own(client, code, handle)
        if record is None:
            raise InvalidGrant(_UNKNOWN)
        check_binding(record, jkt, polling=True)
        if not check_first_poll(record, verifier):
            # The deferral ends: cancelled, so every later poll answers `access_denied`.
            _, task_id = await self._store.deferral_cancel(record.code_hash, self._clock())
            raise PKCEFailed(task_id)
        now = self._clock()

        def step(current: DeferralRecord) -> tuple[DeferralRecord, _Polled]:
            after, verdict = poll_step(current, now, self._rules)
            return after, (verdict, after)

        outcome = await self._store.deferral_poll(record.code_hash, step)
        if outcome is None:  # purged in the meantime
            raise InvalidGrant(_UNKNOWN)
        (verdict, after), ended_task = outcome
        if verdict is Verdict.READY:
            return PollResult(after)
        if verdict is Verdict.EXPIRED:
            raise DeferralExpired(ended_task)
        raise error_for(verdict, record)

    async def redeem(self, ready: PollResult | DeferralRecord) -> bool:
        """Consume an approved code: True for exactly one caller, who may issue the token.
        False: another poll redeemed it, or it was cancelled or expired meanwhile."""
        record = ready.record if isinstance(ready, PollResult) else ready
        return await self._store.deferral_redeem(record.code_hash, self._clock())

    async def deny(self, ready: PollResult | DeferralRecord) -> None:
        """The re-check at redemption failed: the code answers `access_denied` from now on."""
        record = ready.record if isinstance(ready, PollResult) else ready
        await self._store.deferral_deny(record.code_hash)

    # -- cancellation (revocation with the deferral-code hint) ------------------------------

    async def cancel(self, client: Client, code: str, jkt: str | None) -> str | None:
        """Cancel the client's deferral. Unknown, other clients' and already final codes are
        a silent no-op (RFC 7009). A DPoP-bound code needs a proof with its key
        (`InvalidDPoPProof`). Returns the task id to cancel (AROP §7), if any."""
        record = await self._own(client, code, DEFERRAL_CODE_HANDLE)
        if record is None:
            return None
        check_binding(record, jkt, polling=False)
        changed, task_id = await self._store.deferral_cancel(record.code_hash, self._clock())
        return task_id if changed else None

    # -- resolution, expiry, pings ----------------------------------------------------------

    def require_consent(self, by: str, consent: Consent) -> None:
        """A deferral whose snapshot says `{"consent": {"by": by, ...}}` is settled only once
        `consent(record)` is True, whichever comes last, her answer or the end of its access
        request; her refusal denies it at once. A deferral naming a consent nobody required
        here waits until it expires (never settled without it)."""
        self._consents[by] = consent

    async def resolve_task(self, task_id: str, decide: Decide) -> int:
        """The task ended: settle each pending deferral on it (`_settle`), one transaction per
        deferral. Returns how many were resolved; outcomes for deferrals that meanwhile
        expired or were cancelled are discarded. An error from `decide` propagates: what was
        stored stays, and a later call resolves the rest."""
        resolved = 0
        for record in await self._store.deferrals_pending_of_task(task_id):
            resolved += await self._settle(record, decide)
        return resolved

    async def settle(self, code_hash: str, decide: Decide) -> bool:
        """The one a deferral's consent names has answered: settle it now if everything it
        waits for has answered (True when this call resolved it)."""
        record = await self._store.deferral_find(code_hash)
        if record is None or record.status != PENDING:
            return False
        return await self._settle(record, decide)

    async def _settle(self, record: DeferralRecord, decide: Decide) -> bool:
        """Store the outcome (ok → `resolved_ok`, else `denied`) with its ping, when it is
        known: a refused consent or a denial decides at once; a yes waits for the other."""
        if self._clock() >= record.expires_at:
            return False  # expired: `expire_due` or the next poll will say so
        consent = await self._consent(record)
        if consent is False:
            resolution = Resolution(ok=False)
        else:
            decided = await decide(record.snapshot, record.task_id)
            if decided is None or (decided.ok and consent is None):
                return False  # the access request, or the consent, has not answered yet
            resolution = decided
        now = self._clock()
        queued: list[bool] = []
        stored = await self._store.deferral_resolve(
            record.code_hash,
            ok=resolution.ok,
            resolution=resolution.as_json(),
            now=now,
            ping=self._ping_builder(now, queued),
        )
        if stored and any(queued) and self._on_queued is not None:
            self._on_queued()
        return stored

    async def _consent(self, record: DeferralRecord) -> bool | None:
        wanted = record.snapshot.get(CONSENT_MEMBER)
        if not isinstance(wanted, dict):
            return True  # nobody besides the approvers
        check = self._consents.get(str(wanted.get("by")))
        return None if check is None else await check(record)

    async def expire_due(self, *, limit: int = 1000) -> list[str]:
        """Mark live deferrals past their end as expired; delete final ones older than the
        retention. Returns the task ids no deferral waits on any more (cancel them)."""
        now = self._clock()
        count, tasks = await self._store.deferrals_expire(
            now, limit=limit, purge_before=now - self._retain
        )
        if count:
            log.info("%d deferral code(s) expired", count)
        return tasks

    async def settle_task_later(self, task_id: str) -> None:
        """Queue the settling of the deferrals waiting on `task_id` (the `task_terminal`
        follow-up), for a task that ended before its deferral was stored."""
        await self._store.enqueue(TASK_TERMINAL, task_id.encode("utf-8"), self._clock())
        if self._on_queued is not None:
            self._on_queued()

    async def deliver_ping(self, row: OutboxRow) -> Outcome:
        """The outbox handler for rows of kind `deferral_ping`."""
        return await self._pings(row)

    def pings(self, now: float) -> PingBuilder:
        """The ping of a deferral someone else's transaction settles at `now` (a subject's
        revocation denies its deferrals, `bridge.events`): built from the row inside it,
        as `deferral_resolve` builds its own."""
        return self._ping_builder(now, [])

    # -- helpers ----------------------------------------------------------------------------

    async def _own(self, client: Client, code: str, handle: str) -> DeferralRecord | None:
        """The client's deferral of `code`, when the client knows it as `handle`: a CIBA
        `auth_req_id` is neither polled with the deferred grant nor revoked as a deferral
        code (CIBA has no cancellation), and a deferral code is no `auth_req_id`."""
        if not code or len(code) > MAX_CODE_LENGTH:
            return None
        record = await self._store.deferral_find(self._keys.code_hash(code))
        if record is None or record.client_id != client.client_id:
            return None
        return record if handle_of(record) == handle else None

    def _ping_builder(self, now: float, queued: list[bool]) -> PingBuilder:
        """Builds the ping row inside the resolving transaction; notes in `queued` whether
        one was queued."""

        def build(record: DeferralRecord) -> tuple[bytes, float] | None:
            row = self._ping_row(record, now)
            queued.append(row is not None)
            return row

        return build

    def _ping_row(self, record: DeferralRecord, now: float) -> tuple[bytes, float] | None:
        try:
            payload = ping_payload(self._keys, record)
        except SealError:
            # Sealed under another key: the client still learns the outcome by polling.
            log.error("the sealed code of a deferral cannot be opened; no ping is sent")
            return None
        if payload is None:
            return None
        return payload, now + self._settings.ping_delay_seconds
