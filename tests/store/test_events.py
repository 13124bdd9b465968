"""The Shared Signals side of the store contract, on every backend: event streams (created,
read, changed by compare-and-set, deleted with their subjects and waiting SETs), the poll
queue (a SET queued once, taken oldest first, acknowledged, purged), the transmitter's cursor
(compare-and-set), and a subject's revocation in one transaction (its approvals with their
tokens, its live deferrals with their pings, its refresh tokens, its access tokens issued
until then, the audit entries), also racing token ties through several stores (replicas)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from bridge.store.contract import (
    ApprovalRecord,
    AuditEvent,
    DeferralRecord,
    Store,
    StreamRecord,
    SubjectRevocation,
)
from bridge.store.contract.deferrals import DENIED, PENDING, PING_KIND, RESOLVED_OK
from bridge.store.contract.events import ENABLED, PAUSED
from tests.store.conftest import Backend
from tests.store.records import (
    DAY,
    HOUR,
    T0,
    approval,
    audit_event,
    decided,
    deferral,
    refresh_token,
    task,
    unique,
)

pytest_plugins = ["tests.support.plugin"]

ALICE = '["user","alice"]'
BOB = '["user","bob"]'


def stream(**values: Any) -> StreamRecord:
    fields: dict[str, Any] = {
        "id": unique("stream"),
        "receiver": "siem",
        "config": {"delivery": {"method": "urn:ietf:rfc:8936"}, "description": "audit"},
        "events_delivered": ["urn:example:a"],
        "status": ENABLED,
        "reason": None,
        "created_at": T0,
        "updated_at": T0,
        "after_seq": 0,
    }
    return StreamRecord(**(fields | values))


# -- streams ---------------------------------------------------------------------------


async def test_streams_are_created_read_changed_and_deleted(store: Store) -> None:
    first = stream(authorization_sealed=b"sealed")
    second = stream(created_at=T0 + 1)
    other = stream(receiver="other", created_at=T0 + 0.5)
    for record in (second, first, other):
        await store.stream_create(record)
    assert await store.stream_get(first.id) == first
    assert await store.stream_get("unknown") is None
    assert await store.streams_of_receiver("siem") == [first, second]
    assert await store.streams_all() == [first, other, second]  # oldest first

    paused = replace(first, status=PAUSED, reason="maintenance", updated_at=T0 + 5, version=2)
    assert await store.stream_update(paused, 1)
    assert await store.stream_get(first.id) == paused
    # Changed meanwhile: the compare-and-set refuses, nothing written.
    assert not await store.stream_update(replace(paused, reason="late", version=2), 1)
    assert (await store.stream_get(first.id)) == paused

    await store.stream_subject_set(first.id, '{"format":"opaque","id":"a"}', True)
    await store.stream_subject_set(first.id, '{"format":"opaque","id":"b"}', True)
    await store.stream_subject_set(first.id, '{"format":"opaque","id":"b"}', False)
    assert await store.stream_subjects(first.id) == {
        '{"format":"opaque","id":"a"}': True,
        '{"format":"opaque","id":"b"}': False,
    }
    assert await store.poll_queue_add(first.id, "jti-1", {"jti": "jti-1"}, T0)

    assert await store.stream_delete(first.id)
    assert await store.stream_get(first.id) is None
    assert await store.stream_subjects(first.id) == {}
    assert await store.poll_queue_take(first.id, [], 10) == ([], False)
    assert not await store.stream_delete(first.id)


async def test_the_poll_queue_holds_a_set_once_until_it_is_acknowledged(store: Store) -> None:
    one = stream()
    await store.stream_create(one)
    assert await store.poll_queue_add(one.id, "b", {"jti": "b"}, T0 + 2)
    assert await store.poll_queue_add(one.id, "a", {"jti": "a"}, T0 + 1)
    assert await store.poll_queue_add(one.id, "c", {"jti": "c"}, T0 + 3)
    # Queued again (a fan-out run twice, another replica): once.
    assert not await store.poll_queue_add(one.id, "a", {"jti": "a", "again": True}, T0 + 9)
    assert await store.poll_queue_add("another", "a", {"jti": "a"}, T0)

    waiting, more = await store.poll_queue_take(one.id, [], 2)
    assert [(w.jti, w.claims) for w in waiting] == [("a", {"jti": "a"}), ("b", {"jti": "b"})]
    assert more
    # Not acknowledged: the same again.
    assert [w.jti for w in (await store.poll_queue_take(one.id, [], 2))[0]] == ["a", "b"]
    waiting, more = await store.poll_queue_take(one.id, ["a", "b", "unknown"], 2)
    assert [w.jti for w in waiting] == ["c"] and not more
    assert await store.poll_queue_purge(T0 + 4) == 2  # "c", and the other stream's
    assert await store.poll_queue_take(one.id, [], 2) == ([], False)


async def test_the_cursor_moves_by_compare_and_set(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    assert await first.events_cursor("transmitter") is None
    results = await asyncio.gather(
        first.events_cursor_move("transmitter", None, 5),
        second.events_cursor_move("transmitter", None, 7),
    )
    assert sorted(results) == [False, True]
    start = await first.events_cursor("transmitter")
    assert start in (5, 7)
    assert await first.events_cursor_move("transmitter", start, 10)
    assert not await second.events_cursor_move("transmitter", start, 11)
    assert await second.events_cursor("transmitter") == 10
    assert await second.events_cursor("another") is None


# -- a subject's revocation ----------------------------------------------------------------


async def granted(store: Store, subject: dict[str, str], count: int = 1) -> list[ApprovalRecord]:
    record = task(subject=subject)
    await store.task_insert(record, None, [])
    made = [approval(record.id, item=n) for n in range(count)]
    assert await store.task_update(decided(record.id, 1, approvals=made))
    return made


def live_deferral(subject_key: str | None, **values: Any) -> DeferralRecord:
    return deferral(subject_key=subject_key, **values)


def revocation(subject_key: str, token_sub: str, at: float, **values: Any) -> SubjectRevocation:
    fields: dict[str, Any] = {
        "subject_key": subject_key,
        "token_sub": token_sub,
        "at": at,
        "keep_until": at + DAY,
    }
    return SubjectRevocation(**(fields | values))


async def test_a_subjects_revocation_ends_everything_of_it_in_one_transaction(
    store: Store, backend: Backend
) -> None:
    alice = {"type": "user", "id": "alice"}
    first, second = await granted(store, alice, 2)
    [bobs] = await granted(store, {"type": "user", "id": "bob"})
    [lapsed] = await granted(store, alice)
    assert await store.approval_tie_token([first.id], "jti-alice", T0 + HOUR)
    assert await store.approval_tie_token([bobs.id], "jti-bob", T0 + HOUR)
    assert [a.id for a in await store.approvals_of_token("jti-alice")] == [first.id]
    assert await store.approval_token_ids(first.id) == [("jti-alice", T0 + HOUR)]
    found = {a.id for a in await store.approvals_of_subject(ALICE, T0 + 10)}
    assert found == {first.id, second.id, lapsed.id}

    waiting = live_deferral(ALICE, task_id="arq-waiting")
    ready = live_deferral(ALICE, status=RESOLVED_OK, task_id="arq-ready")
    shared_task = live_deferral(ALICE, task_id="arq-shared")
    bobs_deferral = live_deferral(BOB, task_id="arq-shared")
    for record in (waiting, ready, shared_task, bobs_deferral):
        await store.deferral_create(record)
    await store.save_refresh_token(
        refresh_token("family-a", grant=json.dumps({"subject": alice, "scope": []}))
    )
    await store.save_refresh_token(
        refresh_token("family-b", grant=json.dumps({"subject": {"type": "user", "id": "bob"}}))
    )

    pinged: list[str] = []

    def ping(record: DeferralRecord) -> tuple[bytes, float]:
        pinged.append(record.code_hash)
        return b"ping:" + record.code_hash.encode(), T0 + 21

    def audit_of(revoked: ApprovalRecord) -> AuditEvent:
        return audit_event(event="revoked", task_id=revoked.task_id, data={"id": revoked.id})

    done = await store.subject_revoke(
        revocation(
            ALICE,
            "alice",
            T0 + 20,
            audit=[audit_event(event="subject_revoked", task_id=None)],
            approval_audit=audit_of,
            ping=ping,
            deferral_resolution={"approved_until": None, "approvals": []},
        )
    )
    # The lapsed approval counts too: in force until T0 + HOUR.
    assert {a.id for a in done.approvals} == {first.id, second.id, lapsed.id}
    assert (done.deferrals, done.refresh_tokens, done.pings) == (3, 1, 2)
    assert done.orphaned_tasks == ["arq-ready", "arq-waiting"]  # bob's still waits on "shared"
    assert sorted(pinged) == sorted([waiting.code_hash, shared_task.code_hash])

    approvals = await store.approvals_get([first.id, second.id, bobs.id])
    assert approvals[first.id].revoked_at == T0 + 20 and approvals[second.id].revoked_at
    assert approvals[bobs.id].revoked_at is None
    assert await store.is_access_token_revoked("jti-alice")
    assert not await store.is_access_token_revoked("jti-bob")
    for record in (waiting, ready, shared_task):
        found_record = await store.deferral_find(record.code_hash)
        assert found_record is not None and found_record.status == DENIED
        assert found_record.code_sealed is None and found_record.dedupe_key is None
    assert (
        json.loads((await store.deferral_find(waiting.code_hash)).resolution_json or "")[  # type: ignore[union-attr]
            "approvals"
        ]
        == []
    )
    assert (await store.deferral_find(bobs_deferral.code_hash)).status == PENDING  # type: ignore[union-attr]
    assert sorted(backend.rows("SELECT kind, next_attempt_at FROM outbox")) == [
        (PING_KIND, T0 + 21),
        (PING_KIND, T0 + 21),
    ]
    assert backend.rows("SELECT family_id FROM refresh_tokens WHERE revoked_at IS NOT NULL") == [
        ("family-a",)
    ]
    # A rotation saving into the revoked family saves its token revoked.
    await store.save_refresh_token(
        refresh_token("family-a", grant=json.dumps({"subject": alice}), token_hash="rt-late")
    )
    late = await store.find_refresh_token("rt-late")
    assert late is not None and late.revoked_at == T0 + 20
    assert await store.subject_revoked_until("alice") == T0 + 20
    assert await store.subject_revoked_until("bob") is None
    entries = await store.audit_entries()
    assert [e.event for e in entries] == ["subject_revoked", "revoked", "revoked", "revoked"]
    assert await store.approvals_of_subject(ALICE, T0 + 30) == []


async def test_a_later_revocation_moves_the_record_forward_never_back(store: Store) -> None:
    await store.subject_revoke(revocation(ALICE, "alice", T0 + 20, keep_until=T0 + DAY))
    await store.subject_revoke(revocation(ALICE, "alice", T0 + 10, keep_until=T0 + HOUR))
    assert await store.subject_revoked_until("alice") == T0 + 20
    await store.subject_revoke(revocation(ALICE, "alice", T0 + 30, keep_until=T0 + 2 * DAY))
    assert await store.subject_revoked_until("alice") == T0 + 30
    await store.subject_revoke(revocation(BOB, "bob", T0 + 30, keep_until=T0 + HOUR))
    assert await store.subjects_purge(T0 + DAY + 1) == 1  # bob's: no token of his lives
    assert await store.subject_revoked_until("bob") is None
    assert await store.subject_revoked_until("alice") == T0 + 30


async def test_revocations_racing_ties_through_replicas_leave_no_token_in_force(
    backend: Backend,
) -> None:
    stores = [await backend.open() for _ in range(3)]
    subject = {"type": "user", "id": "carol"}
    for round_ in range(20):
        [one] = await granted(stores[0], subject)
        jtis = [unique("jti") for _ in range(2)]
        ties = [
            stores[(round_ + n) % 3].approval_tie_token([one.id], jti, T0 + HOUR)
            for n, jti in enumerate(jtis)
        ]
        revoke = stores[round_ % 3].subject_revoke(
            revocation('["user","carol"]', "carol", T0 + 1 + round_)
        )
        at = round_ % (len(ties) + 1)
        await asyncio.gather(*ties[:at], revoke, *ties[at:])
        for n, jti in enumerate(jtis):
            assert await stores[n % 3].is_access_token_revoked(jti), (round_, jti)
