"""The remote access request side of the store contract, on every backend: records, updates
that expect a status (with their outbox rows), the sweepers' leases, the purge."""

from __future__ import annotations

import asyncio

import pytest

from bridge.store.contract import Store
from tests.store.conftest import Backend
from tests.store.records import HOUR, T0, remote_task

pytest_plugins = ["tests.support.plugin"]


async def test_a_record_round_trips(store: Store) -> None:
    record = remote_task(last_json={"task": {"status": "pending", "é": [1, 2.5, None]}})
    await store.remote_task_insert(record)
    assert await store.remote_task_get(record.id) == record
    assert await store.remote_task_by_state(record.state_hash) == record
    assert await store.remote_task_get("unknown") is None
    assert await store.remote_task_by_state("unknown") is None


async def test_an_update_happens_only_from_an_expected_status(
    store: Store, backend: Backend
) -> None:
    record = remote_task(status="submitting", next_check_at=None)
    await store.remote_task_insert(record)
    assert await store.remote_task_update(
        record.id,
        ["submitting"],
        {"status": "pending", "remote_id": "r-1", "next_check_at": T0 + 5, "last_json": {"a": 1}},
    )
    found = await store.remote_task_get(record.id)
    assert found is not None
    assert (found.status, found.remote_id, found.next_check_at, found.last_json) == (
        "pending",
        "r-1",
        T0 + 5,
        {"a": 1},
    )
    # The outcome and its follow-up together; a late "pending" read changes nothing.
    outbox = [("task_terminal", b"follow-up", T0 + 20)]
    assert await store.remote_task_update(
        record.id, ["pending"], {"status": "approved", "next_check_at": None}, outbox
    )
    assert not await store.remote_task_update(
        record.id, ["pending", "submitting"], {"status": "pending"}, [("x", b"x", T0)]
    )
    assert not await store.remote_task_update("unknown", ["pending"], {"status": "denied"})
    found = await store.remote_task_get(record.id)
    assert found is not None and found.status == "approved" and found.next_check_at is None
    assert backend.rows("SELECT kind, payload, next_attempt_at FROM outbox") == [
        ("task_terminal", b"follow-up", T0 + 20)
    ]
    with pytest.raises(ValueError, match="not updatable"):
        await store.remote_task_update(record.id, ["approved"], {"state_hash": "forged"})


async def test_due_records_are_leased(backend: Backend) -> None:
    store = await backend.open()
    first = remote_task(next_check_at=T0 + 1)
    second = remote_task(next_check_at=T0 + 2)
    later = remote_task(next_check_at=T0 + 100)
    ended = remote_task(status="approved", next_check_at=T0)
    for record in (second, later, ended, first):
        await store.remote_task_insert(record)
    claimed = await store.remote_tasks_claim_due(T0 + 10, 10, lease_seconds=30)
    assert [r.id for r in claimed] == [first.id, second.id]  # oldest due first
    assert claimed[0] == first  # as it was when claimed
    pushed = await store.remote_task_get(first.id)
    assert pushed is not None and pushed.next_check_at == T0 + 40
    other = await backend.open()
    assert await other.remote_tasks_claim_due(T0 + 39, 10, lease_seconds=30) == []
    again = await other.remote_tasks_claim_due(T0 + 40, 1, lease_seconds=30)
    assert len(again) == 1 and again[0].id in (first.id, second.id)


async def test_sweepers_claiming_at_once_read_disjoint_records(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for n in range(40):
        await stores[0].remote_task_insert(remote_task(next_check_at=T0 + n / 100))
    claims = await asyncio.gather(
        *(s.remote_tasks_claim_due(T0 + 1, 6, lease_seconds=60) for s in stores for _ in range(3))
    )
    ids = [r.id for claim in claims for r in claim]
    assert len(ids) == len(set(ids)) == 40


async def test_the_purge_forgets_ended_records(store: Store) -> None:
    ended = remote_task(status="denied", expires_at=T0)
    waiting = remote_task(expires_at=T0)  # still pending: the sweeper expires it first
    recent = remote_task(status="approved", expires_at=T0 + HOUR)
    for record in (ended, waiting, recent):
        await store.remote_task_insert(record)
    assert await store.remote_tasks_purge(T0 + 1) == 1
    assert await store.remote_task_get(ended.id) is None
    assert await store.remote_task_get(waiting.id) is not None
    assert await store.remote_task_get(recent.id) is not None
    assert await store.remote_tasks_purge(T0 + 1) == 0
