"""The CIBA side of the store contract, on every backend: a request is stored with its
notice, read back whole; the user's pending requests, newest first; her answer is one
compare-and-set from `pending`, hers alone, before the request expires, with what follows
from it queued in the same transaction (also when replicas answer at once); housekeeping."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bridge.store.contract import CibaRequestRecord, Store
from bridge.store.contract.ciba import APPROVED, DECLINED, PENDING
from tests.store.conftest import Backend
from tests.store.records import HOUR, T0, unique

pytest_plugins = ["tests.support.plugin"]


def request(**values: Any) -> CibaRequestRecord:
    fields: dict[str, Any] = {
        "id": unique("ciba"),
        "code_hash": unique("code"),
        "client_id": "agent-1",
        "subject_type": "user",
        "subject_id": "alice",
        "binding_message": "W4SCT",
        "words_json": json.dumps(["Pay 1,200.00 EUR to Merchant A"]),
        "status": PENDING,
        "created_at": T0,
        "expires_at": T0 + HOUR,
    }
    return CibaRequestRecord(**(fields | values))


def outbox_kinds(backend: Backend) -> list[tuple[str, bytes]]:
    return [(kind, bytes(payload)) for kind, payload in backend.rows(
        "SELECT kind, payload FROM outbox ORDER BY id"
    )]  # fmt: skip


async def test_a_request_is_stored_with_its_notice_and_read_back(
    store: Store, backend: Backend
) -> None:
    record = request(binding_message=None)
    await store.ciba_request_create(record, [("consent_notice", b"tell alice", T0)])
    found = await store.ciba_request_get(record.id)
    assert found == record
    assert found.words == ["Pay 1,200.00 EUR to Merchant A"]
    assert await store.ciba_request_get("unknown") is None
    assert outbox_kinds(backend) == [("consent_notice", b"tell alice")]


async def test_the_users_pending_requests_newest_first(store: Store) -> None:
    older = request(created_at=T0)
    newer = request(created_at=T0 + 10)
    expired = request(created_at=T0 + 20, expires_at=T0 + 30)
    bobs = request(subject_id="bob", created_at=T0 + 5)
    decided = request(created_at=T0 + 1)
    for record in (older, newer, expired, bobs, decided):
        await store.ciba_request_create(record)
    await store.ciba_request_decide(
        decided.id, subject_type="user", subject_id="alice", status=DECLINED, now=T0 + 2
    )
    found = await store.ciba_requests_pending_for("user", "alice", T0 + 40, 10)
    assert [r.id for r in found] == [newer.id, older.id]
    assert [r.id for r in await store.ciba_requests_pending_for("user", "alice", T0 + 40, 1)] == [
        newer.id
    ]
    assert [r.id for r in await store.ciba_requests_pending_for("user", "bob", T0, 10)] == [bobs.id]
    # The same name as another subject type is someone else.
    assert await store.ciba_requests_pending_for("client", "alice", T0, 10) == []


async def test_her_answer_is_taken_once_with_what_follows(store: Store, backend: Backend) -> None:
    record = request()
    await store.ciba_request_create(record)
    decided = await store.ciba_request_decide(
        record.id,
        subject_type="user",
        subject_id="alice",
        status=APPROVED,
        now=T0 + 5,
        outbox=[("ciba_decided", record.id.encode(), T0 + 5)],
    )
    assert decided is not None
    assert (decided.status, decided.decided_at, decided.code_hash) == (
        APPROVED,
        T0 + 5,
        record.code_hash,
    )
    assert await store.ciba_request_get(record.id) == decided
    # Decided is decided: neither the same answer nor the other one changes it again.
    for status in (APPROVED, DECLINED):
        again = await store.ciba_request_decide(
            record.id,
            subject_type="user",
            subject_id="alice",
            status=status,
            now=T0 + 6,
            outbox=[("ciba_decided", b"again", T0 + 6)],
        )
        assert again is None
    assert outbox_kinds(backend) == [("ciba_decided", record.id.encode())]


async def test_nobody_else_answers_for_her_and_nobody_after_the_end(
    store: Store, backend: Backend
) -> None:
    record = request()
    await store.ciba_request_create(record)
    for subject_type, subject_id in (("user", "bob"), ("client", "alice"), ("user", "Alice")):
        refused = await store.ciba_request_decide(
            record.id,
            subject_type=subject_type,
            subject_id=subject_id,
            status=APPROVED,
            now=T0 + 1,
            outbox=[("ciba_decided", b"x", T0)],
        )
        assert refused is None
    late = await store.ciba_request_decide(
        record.id,
        subject_type="user",
        subject_id="alice",
        status=APPROVED,
        now=record.expires_at,
        outbox=[("ciba_decided", b"x", T0)],
    )
    assert late is None
    unknown = await store.ciba_request_decide(
        "unknown", subject_type="user", subject_id="alice", status=APPROVED, now=T0
    )
    assert unknown is None
    assert await store.ciba_request_get(record.id) == record
    assert outbox_kinds(backend) == []


async def test_replicas_taking_her_answer_at_once_take_one(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    record = request()
    await stores[0].ciba_request_create(record)
    answers = await asyncio.gather(
        *(
            s.ciba_request_decide(
                record.id,
                subject_type="user",
                subject_id="alice",
                status=status,
                now=T0 + 1,
                outbox=[("ciba_decided", status.encode(), T0 + 1)],
            )
            for s in stores
            for status in (APPROVED, DECLINED)
        )
    )
    taken = [a for a in answers if a is not None]
    assert len(taken) == 1
    stored = await stores[1].ciba_request_get(record.id)
    assert stored is not None and stored.status == taken[0].status
    assert outbox_kinds(backend) == [("ciba_decided", taken[0].status.encode())]


async def test_the_purge_deletes_what_expired_before_the_cut(store: Store) -> None:
    gone = request(expires_at=T0 + 10)
    kept = request(expires_at=T0 + 100)
    for record in (gone, kept):
        await store.ciba_request_create(record)
    assert await store.ciba_requests_purge(T0 + 50) == 1
    assert await store.ciba_request_get(gone.id) is None
    assert await store.ciba_request_get(kept.id) == kept
    assert await store.ciba_requests_purge(T0 + 50) == 0
