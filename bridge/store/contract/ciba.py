"""The CIBA side of the store contract: the user's own decision on a backchannel
authentication request (OpenID CIBA Core 1.0), which every replica must see.

A client asks, at the backchannel authentication endpoint, for a token that acts for a user;
the bridge keeps the request as a deferral (`store.contract.deferrals`, found by the hash of
its `auth_req_id`) and, here, what the user is asked and what she answered on her own device.
The record's `id` is random and names her page (`/ciba/requests/<id>`): it is never the
`auth_req_id`, which is the client's secret. Her answer is one compare-and-set from
`pending`, and only she (the subject the request names) can give it.

    pending ──she approves──> approved
       └────she declines────> declined
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .outbox import OutboxEntry

PENDING = "pending"
APPROVED = "approved"
DECLINED = "declined"
DECIDED = (APPROVED, DECLINED)


@dataclass(frozen=True, slots=True)
class CibaRequestRecord:
    id: str  # random, the page's URL; never the auth_req_id
    code_hash: str  # the deferral's (the keyed hash of the auth_req_id)
    client_id: str
    subject_type: str  # the user the login_hint names, as AuthZEN sees her
    subject_id: str
    binding_message: str | None  # what the client shows on its own device, if anything
    words_json: str  # JSON list of lines: what is asked, in the profiles' words
    status: str
    created_at: float
    expires_at: float
    decided_at: float | None = None

    @property
    def words(self) -> list[str]:
        data = json.loads(self.words_json)
        return [str(line) for line in data] if isinstance(data, list) else []


class CibaRequestStore(Protocol):
    async def ciba_request_create(
        self, record: CibaRequestRecord, outbox: Sequence[OutboxEntry] = ()
    ) -> None:
        """Store a new request (`pending`) and queue `outbox` (the user's notice) in the same
        transaction."""
        ...

    async def ciba_request_get(self, request_id: str) -> CibaRequestRecord | None: ...

    async def ciba_requests_pending_for(
        self, subject_type: str, subject_id: str, now: float, limit: int
    ) -> list[CibaRequestRecord]:
        """The user's requests still waiting for her (pending, not expired at `now`), newest
        first, at most `limit`."""
        ...

    async def ciba_request_decide(
        self,
        request_id: str,
        *,
        subject_type: str,
        subject_id: str,
        status: str,
        now: float,
        outbox: Sequence[OutboxEntry] = (),
    ) -> CibaRequestRecord | None:
        """Compare-and-set `pending` → `status` (`approved` or `declined`) for the user the
        request names, before it expires, with `outbox` queued in the same transaction.
        Returns the record as decided; None when nothing changed (unknown, another user's,
        already decided, or expired): of concurrent callers at most one wins."""
        ...

    async def ciba_requests_purge(self, before: float) -> int:
        """Delete the requests that expired before `before` (housekeeping); how many."""
        ...
