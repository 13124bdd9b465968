"""The audit side of the store contract, on every backend: entries come back as they were
appended, chained (sequence numbers without gaps, each `prev_hash` naming the entry before,
each hash that of the entry's own members), the head moved with every append; the filters;
stores on one database (replicas) appending at once make one chain."""

from __future__ import annotations

import asyncio

from bridge.store.contract import (
    AuditEntry,
    AuditEvent,
    AuditHead,
    Store,
    TaskChange,
    entry_hash,
)
from bridge.store.contract.audit import GENESIS_HASH
from tests.store.conftest import Backend
from tests.store.records import T0, audit_event, task

pytest_plugins = ["tests.support.plugin"]


def assert_one_chain(entries: list[AuditEntry], head: AuditHead | None) -> None:
    """seq 1..n, each entry naming its predecessor's hash, each hash its own, the head last."""
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    previous = GENESIS_HASH
    for e in entries:
        assert e.prev_hash == previous, e.seq
        assert e.hash == entry_hash(e.seq, e.at, e.event, e.task_id, e.actor, e.data, previous)
        previous = e.hash
    assert head == (AuditHead(entries[-1].seq, entries[-1].hash) if entries else None)


def as_event(entry: AuditEntry) -> AuditEvent:
    return AuditEvent(entry.at, entry.event, entry.task_id, entry.actor, entry.data)


async def test_an_empty_trail_has_no_head(store: Store) -> None:
    assert await store.audit_head() is None
    assert await store.audit_entries() == []
    await store.audit_append([])  # nothing to append: still nothing
    assert await store.audit_head() is None


async def test_entries_come_back_as_appended_and_chained(store: Store, backend: Backend) -> None:
    first = [
        audit_event(
            at=T0 + 0.125,
            data={"z": [1, 2.5, None], "a": {"é": "ünïcode", "b": True}, "n": 10**15},
        ),
        audit_event(event="notified", task_id=None, actor=None, data={}),
    ]
    await store.audit_append(first)
    entries = await store.audit_entries()
    assert [as_event(e) for e in entries] == first
    assert list(entries[0].data) == ["z", "a", "n"]  # the members' order as written
    assert_one_chain(entries, await store.audit_head())

    # The next append continues the chain from the head, through another store as well.
    other = await backend.open()
    later = [audit_event(at=T0 + 5, event="approved", actor="bob", data={"item": 0})]
    await other.audit_append(later)
    entries = await store.audit_entries()
    assert [as_event(e) for e in entries] == first + later
    assert entries[2].prev_hash == entries[1].hash
    assert_one_chain(entries, await store.audit_head())
    assert backend.rows("SELECT seq, hash FROM audit_head") == [(3, entries[2].hash)]


async def test_an_edited_entry_no_longer_matches_its_hash(store: Store, backend: Backend) -> None:
    await store.audit_append([audit_event(data={"approved": False})])
    backend.rows("UPDATE audit_log SET data = ? WHERE seq = 1", '{"approved": true}')
    [edited] = await store.audit_entries()
    assert edited.data == {"approved": True}
    assert edited.hash != entry_hash(
        edited.seq,
        edited.at,
        edited.event,
        edited.task_id,
        edited.actor,
        edited.data,
        edited.prev_hash,
    )


async def test_the_filters(store: Store) -> None:
    events = [
        audit_event(at=T0 + n, task_id=("arq-a" if n % 2 else "arq-b"), data={"n": n})
        for n in range(8)
    ]
    await store.audit_append(events[:3])
    await store.audit_append(events[3:])

    def numbers(entries: list[AuditEntry]) -> list[int]:
        return [e.data["n"] for e in entries]

    assert numbers(await store.audit_entries()) == list(range(8))
    assert numbers(await store.audit_entries(after_seq=5)) == [5, 6, 7]
    assert numbers(await store.audit_entries(limit=3)) == [0, 1, 2]
    assert numbers(await store.audit_entries(since=T0 + 6)) == [6, 7]  # at >= since
    assert numbers(await store.audit_entries(task_id="arq-a")) == [1, 3, 5, 7]
    assert numbers(await store.audit_entries(task_id="arq-a", after_seq=4, limit=1)) == [5]
    assert numbers(await store.audit_entries(task_id="arq-b", since=T0 + 3)) == [4, 6]
    assert await store.audit_entries(task_id="unknown") == []
    assert await store.audit_entries(after_seq=8) == []


async def test_replicas_appending_at_once_make_one_chain(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    batches = [
        [audit_event(at=T0 + n, event=f"batch-{n}", data={"part": k}) for k in range(n % 3 + 1)]
        for n in range(30)
    ]
    await asyncio.gather(*(stores[n % 3].audit_append(b) for n, b in enumerate(batches)))
    entries = await stores[0].audit_entries()
    assert len(entries) == sum(len(b) for b in batches)
    assert_one_chain(entries, await stores[1].audit_head())
    # Each batch is one transaction: its entries are consecutive and in order.
    for batch in batches:
        seqs = [e.seq for e in entries if e.event == batch[0].event]
        assert seqs == list(range(seqs[0], seqs[0] + len(batch)))
        assert [e.data["part"] for e in entries if e.event == batch[0].event] == list(
            range(len(batch))
        )


async def test_changes_and_appends_racing_make_one_chain(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    records = [task() for _ in range(12)]
    await asyncio.gather(
        *(
            stores[n % 3].task_insert(r, None, [], audit=[audit_event(task_id=r.id)])
            for n, r in enumerate(records)
        ),
        *(stores[n % 3].audit_append([audit_event(event="notified")]) for n in range(12)),
    )
    decisions = [
        TaskChange(
            r.id, 1, "approved", [], T0 + 1, T0 + 2, audit=[audit_event(task_id=r.id, event="a")]
        )
        for r in records
    ]
    await asyncio.gather(
        *(stores[n % 3].task_update(c) for n, c in enumerate(decisions)),
        *(stores[n % 3].audit_append([audit_event(event="notified")]) for n in range(12)),
    )
    entries = await stores[2].audit_entries()
    assert len(entries) == 48
    assert_one_chain(entries, await stores[0].audit_head())
