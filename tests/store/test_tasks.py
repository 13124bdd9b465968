"""The access request side of the store contract, on every backend: tasks and their
compare-and-set, idempotency keys, spent binding jtis, approvals, the inbox and expiry
queries, the purge; submissions and decisions racing through several stores on one database
(replicas) included; what is written with a change (approvals, outbox rows, audit entries)
only when the change is."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from bridge.store.contract import (
    BindingReused,
    IdempotencyConflict,
    Store,
    TaskRecord,
)
from tests.store.conftest import Backend
from tests.store.records import (
    DAY,
    HOUR,
    T0,
    approval,
    audit_event,
    decided,
    idempotency,
    task,
    unique,
)

pytest_plugins = ["tests.support.plugin"]


async def test_a_task_round_trips(store: Store) -> None:
    record = task(
        bundle=True,
        items=[{"status": "pending", "n": 1.5}, {"status": "pending", "é": None}],
        requested_access={"until": "2030-01-01T00:00:00Z"},
        client={"client_id": "agent-1"},
    )
    assert await store.task_insert(record, None, [("jti-1", T0 + 600)]) == (record, True)
    assert await store.task_get(record.id) == record
    assert await store.task_get("unknown") is None


async def test_an_equal_submission_with_the_same_key_gets_the_first_task(
    store: Store, backend: Backend
) -> None:
    first = task()
    key = idempotency(first.id)
    assert await store.task_insert(first, key, [("jti-1", T0 + 600)]) == (first, True)
    assert await store.idempotency_find("pep-1", "key-1", T0) == key
    assert await store.idempotency_find("pep-1", "key-1", key.keep_until) is None  # lapsed then
    again = task()
    assert await store.task_insert(again, idempotency(again.id), [("jti-2", T0 + 600)]) == (
        first,
        False,
    )
    with pytest.raises(IdempotencyConflict) as conflict:
        other = task()
        await store.task_insert(other, idempotency(other.id, "body-2"), [("jti-3", T0 + 600)])
    assert str(conflict.value) == first.id
    # Nothing was written for either: no task, no claimed jti.
    assert backend.rows("SELECT id FROM access_requests") == [(first.id,)]
    assert backend.rows("SELECT jti FROM access_request_bindings") == [("jti-1",)]
    # Another requester's key of the same name is another key.
    stranger = task(requester="pep-2")
    assert await store.task_insert(stranger, idempotency(stranger.id, requester="pep-2"), []) == (
        stranger,
        True,
    )


async def test_a_lapsed_key_or_a_purged_task_frees_the_key(store: Store) -> None:
    first = task()
    await store.task_insert(first, idempotency(first.id, keep_until=T0 + 5), [])
    later = task(created_at=T0 + 5)  # the key's record lapsed at T0 + 5
    key = idempotency(later.id, "body-2")
    assert await store.task_insert(later, key, []) == (later, True)
    assert await store.idempotency_find("pep-1", "key-1", T0 + 6) == key


async def test_a_spent_binding_jti_refuses_the_submission_and_writes_nothing(
    store: Store, backend: Backend
) -> None:
    first = task()
    await store.task_insert(first, None, [("jti-1", T0 + 600)])
    second = task()
    with pytest.raises(BindingReused):
        await store.task_insert(
            second, idempotency(second.id), [("jti-2", T0 + 600), ("jti-1", T0 + 600)]
        )
    assert await store.task_get(second.id) is None
    assert await store.idempotency_find("pep-1", "key-1", T0) is None
    assert backend.rows("SELECT jti, task_id FROM access_request_bindings") == [("jti-1", first.id)]
    # jti-2 was not spent by the refused submission; a jti whose denial has expired is free.
    third = task(created_at=T0 + 600.5)
    assert await store.task_insert(third, None, [("jti-2", T0 + 900), ("jti-1", T0 + 900)]) == (
        third,
        True,
    )
    # The same jti twice in one submission counts once.
    fourth = task()
    assert (await store.task_insert(fourth, None, [("jti-9", T0 + 1), ("jti-9", T0 + 1)]))[1]


async def test_submissions_racing_with_one_key_make_one_task(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for round_ in range(4):
        key = f"key-{round_}"
        records = [task() for _ in range(6)]
        results = await asyncio.gather(
            *(
                stores[n % 3].task_insert(r, idempotency(r.id, key=key), [(unique("jti"), T0 + 9)])
                for n, r in enumerate(records)
            )
        )
        made = [record for record, new in results if new]
        assert len(made) == 1
        assert {record.id for record, _ in results} == {made[0].id}
    assert len(backend.rows("SELECT id FROM access_requests")) == 4


async def test_submissions_racing_with_one_key_and_other_bodies(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    records = [task() for _ in range(6)]

    async def submit(n: int) -> object:
        try:
            return await stores[n % 3].task_insert(
                records[n], idempotency(records[n].id, f"body-{n}"), []
            )
        except IdempotencyConflict as conflict:
            return conflict

    results = await asyncio.gather(*(submit(n) for n in range(6)))
    made = [r for r in results if isinstance(r, tuple)]
    conflicts = [r for r in results if isinstance(r, IdempotencyConflict)]
    assert len(made) == 1 and len(conflicts) == 5
    assert {str(c) for c in conflicts} == {made[0][0].id}  # type: ignore[index]


async def test_one_binding_jti_submitted_at_once_through_replicas(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]

    async def submit(n: int, jti: str) -> bool:
        try:
            await stores[n % 3].task_insert(task(), None, [(jti, T0 + 600)])
        except BindingReused:
            return False
        return True

    for round_ in range(4):
        won = await asyncio.gather(*(submit(n, f"jti-{round_}") for n in range(6)))
        assert sorted(won) == [False] * 5 + [True]
    assert len(backend.rows("SELECT id FROM access_requests")) == 4


async def test_the_task_compare_and_set(store: Store, backend: Backend) -> None:
    record = task()
    await store.task_insert(record, None, [])
    granted = approval(record.id, members=["client_id", "resource"])
    stale = decided(record.id, 2, approvals=[approval(record.id)], outbox=[("x", b"x")])
    assert not await store.task_update(stale)
    change = decided(record.id, 1, approvals=[granted], outbox=[("task_terminal", b"follow-up")])
    assert await store.task_update(change)
    found = await store.task_get(record.id)
    assert found is not None
    assert (found.status, found.version, found.items) == ("approved", 2, [{"status": "approved"}])
    assert (found.updated_at, found.retain_until) == (T0 + 10, T0 + DAY)
    # The approval and the follow-up were written with it, the stale change's were not.
    assert await store.approvals_get([granted.id, granted.id, "unknown"]) == {granted.id: granted}
    assert backend.rows("SELECT COUNT(*) FROM access_request_approvals") == [(1,)]
    rows = await store.claim_outbox(T0 + 10, 10, lease_seconds=60)
    assert [(r.kind, r.payload, r.created_at) for r in rows] == [
        ("task_terminal", b"follow-up", T0 + 10)
    ]
    # Decided: no further change, at any version.
    assert not await store.task_update(decided(record.id, 2, "denied"))
    assert await store.approvals_get([]) == {}


async def test_two_approvers_deciding_at_once_through_replicas(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for _ in range(4):
        record = task()
        await stores[0].task_insert(record, None, [])
        changes = [
            decided(record.id, 1, status, approvals=[approval(record.id)] if ok else [])
            for ok, status in ((True, "approved"), (False, "denied")) * 3
        ]
        won = await asyncio.gather(*(stores[n % 3].task_update(c) for n, c in enumerate(changes)))
        assert sorted(won) == [False] * 5 + [True]
        winner = changes[won.index(True)]
        found = await stores[1].task_get(record.id)
        assert found is not None and found.status == winner.status and found.version == 2
        approvals = backend.rows(
            "SELECT COUNT(*) FROM access_request_approvals WHERE task_id = ?", record.id
        )
        assert approvals == [(len(winner.approvals),)]


async def test_pending_and_past_expiry(store: Store) -> None:
    old = task(created_at=T0 - 30, expires_at=T0 + 5)
    middle = task(created_at=T0 - 20, expires_at=T0 + 1)
    young = task(created_at=T0 - 10, expires_at=T0 + HOUR)
    done = task(created_at=T0 - 40, expires_at=T0)
    for record in (young, done, middle, old):
        await store.task_insert(record, None, [])
    await store.task_update(decided(done.id, 1))
    assert [t.id for t in await store.tasks_pending(10)] == [old.id, middle.id, young.id]
    assert [t.id for t in await store.tasks_pending(2)] == [old.id, middle.id]
    assert [t.id for t in await store.tasks_past_expiry(T0 + 5, 10)] == [middle.id, old.id]
    assert [t.id for t in await store.tasks_past_expiry(T0 + 5, 1)] == [middle.id]
    assert await store.tasks_past_expiry(T0, 10) == []


async def test_approval_revoke(store: Store) -> None:
    record = task()
    await store.task_insert(record, None, [])
    granted = approval(record.id)
    await store.task_update(decided(record.id, 1, approvals=[granted]))
    assert await store.approval_revoke(granted.id, T0 + 20)
    assert not await store.approval_revoke(granted.id, T0 + 30)
    assert not await store.approval_revoke("unknown", T0)
    found = await store.approvals_get([granted.id])
    assert found[granted.id].revoked_at == T0 + 20


async def test_the_purge_forgets_what_no_longer_works(store: Store, backend: Backend) -> None:
    keep = 7 * DAY
    gone, kept, waiting = task(), task(), task()
    await store.task_insert(gone, idempotency(gone.id, keep_until=T0 + 50), [("jti-1", T0 + 50)])
    await store.task_insert(kept, None, [("jti-2", T0 + 500)])
    await store.task_insert(waiting, None, [])
    old_approval = approval(gone.id, approved_until=T0 + 60)
    await store.task_update(decided(gone.id, 1, retain_until=T0 + 100, approvals=[old_approval]))
    fresh_approval = approval(kept.id, approved_until=T0 + keep + 1000)
    await store.task_update(decided(kept.id, 1, retain_until=T0 + 200, approvals=[fresh_approval]))

    await store.tasks_purge(T0 + 150 + keep, keep)
    assert await store.task_get(gone.id) is None
    assert await store.task_get(kept.id) is not None
    assert await store.task_get(waiting.id) is not None  # pending tasks are expired, not purged
    assert await store.approvals_get([old_approval.id, fresh_approval.id]) == {
        fresh_approval.id: fresh_approval
    }
    assert backend.rows("SELECT COUNT(*) FROM access_request_idempotency") == [(0,)]
    assert backend.rows("SELECT jti FROM access_request_bindings") == []


def with_a_change(record: TaskRecord) -> dict[str, Any]:
    """What may go with a new task: an outbox row, an audit entry, an approval."""
    return {
        "outbox": [("arap_callback", record.id.encode())],
        "audit": [audit_event(task_id=record.id)],
        "approvals": [approval(record.id, approved_by="bob")],
    }


def written(backend: Backend) -> list[list[tuple[Any, ...]]]:
    return [
        backend.rows(f"SELECT COUNT(*) FROM {table}")
        for table in ("outbox", "audit_log", "access_request_approvals")
    ]


async def test_a_new_task_is_written_with_its_outbox_rows_audit_and_approvals(
    store: Store, backend: Backend
) -> None:
    record = task(created_at=T0 + 7)
    extras = with_a_change(record)
    assert await store.task_insert(record, idempotency(record.id), [], **extras) == (record, True)
    [granted] = extras["approvals"]
    assert await store.approvals_get([granted.id]) == {granted.id: granted}
    # The outbox rows are due when the task was made.
    assert await store.claim_outbox(T0 + 6.5, 10, lease_seconds=60) == []
    rows = await store.claim_outbox(T0 + 7, 10, lease_seconds=60)
    assert [(r.kind, r.payload, r.created_at) for r in rows] == [
        ("arap_callback", record.id.encode(), T0 + 7)
    ]
    [entry] = await store.audit_entries()
    assert (entry.event, entry.task_id, entry.data) == ("filed", record.id, {"items": 1})
    # The same submission again gets the first task, and nothing is written for it.
    again = task()
    assert await store.task_insert(again, idempotency(again.id), [], **with_a_change(again)) == (
        record,
        False,
    )
    assert written(backend) == [[(1,)], [(1,)], [(1,)]]


async def test_a_refused_submission_writes_no_outbox_rows_audit_or_approvals(
    store: Store, backend: Backend
) -> None:
    first = task()
    await store.task_insert(first, idempotency(first.id), [("jti-1", T0 + 600)])
    other, reused = task(), task()
    with pytest.raises(IdempotencyConflict):
        await store.task_insert(other, idempotency(other.id, "body-2"), [], **with_a_change(other))
    with pytest.raises(BindingReused):
        await store.task_insert(reused, None, [("jti-1", T0 + 600)], **with_a_change(reused))
    assert written(backend) == [[(0,)], [(0,)], [(0,)]]
    assert await store.audit_head() is None


async def test_a_decision_appends_its_audit_entries_only_when_it_wins(store: Store) -> None:
    record = task()
    await store.task_insert(record, None, [])
    stale = decided(record.id, 2, audit=[audit_event(task_id=record.id, event="stale")])
    assert not await store.task_update(stale)
    assert await store.audit_head() is None
    won = decided(record.id, 1, audit=[audit_event(task_id=record.id, event="approved")])
    assert await store.task_update(won)
    assert [e.event for e in await store.audit_entries(task_id=record.id)] == ["approved"]


async def test_a_decided_task_changes_only_when_the_change_allows_any_status(
    store: Store, backend: Backend
) -> None:
    record = task()
    await store.task_insert(record, None, [])
    assert await store.task_update(decided(record.id, 1))
    review = decided(
        record.id,
        2,
        items=[{"status": "approved", "reviewed": True}],
        updated_at=T0 + 20,
        outbox=[("reviewed", b"r")],
        audit=[audit_event(task_id=record.id, event="reviewed")],
        approvals=[approval(record.id)],
    )
    assert not await store.task_update(review)  # pending only, by default
    # Any status, but still at the expected version only.
    assert not await store.task_update(
        dataclasses.replace(review, only_pending=False, expected_version=1)
    )
    assert written(backend) == [[(0,)], [(0,)], [(0,)]]
    assert await store.task_update(dataclasses.replace(review, only_pending=False))
    found = await store.task_get(record.id)
    assert found is not None
    assert (found.status, found.version, found.items, found.updated_at) == (
        "approved",
        3,
        [{"status": "approved", "reviewed": True}],
        T0 + 20,
    )
    assert written(backend) == [[(1,)], [(1,)], [(1,)]]
