"""Her request: what a CIBA request asks of the user, stored for her page with the notice
that tells her of it (`notifications.consent`), in one transaction.

Its deferral's snapshot names the request (`decision.consent_member`) and says the client
knows the code as `auth_req_id` (pings carry it so, and only the CIBA grant redeems it). The
request's `id` is random, for her page's URL; the `auth_req_id` stays the client's secret.
What is asked is kept in words (`rar.describe.describe_planned`): her page and her e-mail
show those, never JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..deferral.models import HANDLE_MEMBER
from ..front_door.person import Person
from ..notifications.consent import CONSENT_NOTICE, ConsentNotice, ConsentWords
from ..oauth.clients import Client
from ..rar.describe import describe_planned
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation
from ..store.contract import CibaRequestRecord
from ..store.contract.ciba import PENDING
from .decision import Store, consent_member
from .grant import AUTH_REQ_ID
from .request import BackchannelRequest

REQUESTS_PATH = "/ciba/requests"


def page_path(request_id: str) -> str:
    return f"{REQUESTS_PATH}/{request_id}"


class UserRequests:
    def __init__(
        self,
        store: Store,
        profiles: ProfileSet,
        public_url: str,
        *,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._wake = wake

    def snapshot_members(self, request_id: str, binding_message: str | None) -> dict[str, Any]:
        """What a CIBA deferral's snapshot holds beside the request: its handle, and the
        consent it waits for (with the binding message, which makes two requests differ)."""
        consent = consent_member(request_id)
        for member in consent.values():
            member["binding_message"] = binding_message
        return {HANDLE_MEMBER: AUTH_REQ_ID, **consent}

    async def store(
        self,
        request_id: str,
        *,
        code_hash: str,
        client: Client,
        person: Person,
        asked: BackchannelRequest,
        details: list[dict[str, Any]],
        planned: Sequence[PlannedEvaluation],
    ) -> CibaRequestRecord:
        """Store her request (pending, ending with its deferral) and queue her notice."""
        now = self._clock()
        deferral = await self._store.deferral_find(code_hash)
        expires_at = deferral.expires_at if deferral is not None else now
        words = list(dict.fromkeys(describe_planned(self._profiles, details, p) for p in planned))
        record = CibaRequestRecord(
            id=request_id,
            code_hash=code_hash,
            client_id=client.client_id,
            subject_type=person.subject_type,
            subject_id=person.name,
            binding_message=asked.binding_message,
            words_json=json.dumps(words),
            status=PENDING,
            created_at=now,
            expires_at=expires_at,
        )
        notice = ConsentNotice(
            request_id,
            person.name,
            person.subject_type,
            ConsentWords.of(
                client.client_id,
                words,
                asked.binding_message,
                expires_at,
                self._public_url + page_path(request_id),
            ),
        )
        await self._store.ciba_request_create(record, [(CONSENT_NOTICE, notice.payload(), now)])
        if self._wake is not None:
            self._wake()
        return record
