"""The outbox side of the store contract, on every backend: leases, what two workers (two
replicas) claiming at once get, a lease that runs out, and done / retry / failed / purge; a
row queued with a dedupe key is queued once, also by replicas deciding to at once."""

from __future__ import annotations

import asyncio

from bridge.store.contract import Store
from tests.store.conftest import Backend
from tests.store.records import T0

pytest_plugins = ["tests.support.plugin"]


async def test_a_claimed_row_is_leased_and_due_again_when_the_lease_runs_out(
    backend: Backend,
) -> None:
    store = await backend.open()
    await store.enqueue("deferral_ping", b"second", T0 + 2)
    await store.enqueue("task_terminal", b"first", T0 + 1)
    await store.enqueue("arap_callback", b"later", T0 + 100)
    claimed = await store.claim_outbox(T0 + 10, 10, lease_seconds=30)
    # Due rows only, oldest due first, each attempt counted.
    assert [(r.kind, r.payload, r.attempts) for r in claimed] == [
        ("task_terminal", b"first", 1),
        ("deferral_ping", b"second", 1),
    ]
    assert claimed[0].created_at == T0 + 1
    # Leased: nobody gets them during the lease, not another store either.
    other = await backend.open()
    assert await other.claim_outbox(T0 + 39, 10, lease_seconds=30) == []
    # The worker holding them died: when the lease ends they are due again, anywhere.
    again = await other.claim_outbox(T0 + 40, 10, lease_seconds=30)
    assert sorted((r.id, r.attempts) for r in again) == sorted((r.id, 2) for r in claimed)
    assert await store.outbox_counts() == {"pending": 3}


async def test_workers_claiming_at_once_get_disjoint_rows(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for n in range(60):
        await stores[0].enqueue("deferral_ping", f"row-{n}".encode(), T0 + n / 100)
    claims = await asyncio.gather(
        *(s.claim_outbox(T0 + 1, 7, lease_seconds=60) for s in stores for _ in range(3))
    )
    ids = [row.id for claim in claims for row in claim]
    assert len(ids) == len(set(ids)) == 60  # every row once: 9 claims of at most 7
    assert all(row.attempts == 1 for claim in claims for row in claim)
    assert await stores[1].claim_outbox(T0 + 1, 100, lease_seconds=60) == []


async def test_done_retry_failed_and_purge(store: Store, backend: Backend) -> None:
    for n, payload in enumerate((b"done", b"retry", b"failed")):
        await store.enqueue("deferral_ping", payload, T0 - 1 + n / 10)
    await store.enqueue("deferral_ping", b"waiting", T0 + 50)
    rows = {row.payload: row for row in await store.claim_outbox(T0, 10, lease_seconds=60)}
    assert sorted(rows) == [b"done", b"failed", b"retry"]
    await store.outbox_done(rows[b"done"].id)
    await store.outbox_retry(rows[b"retry"].id, T0 + 5, "ping answered 503")
    await store.outbox_failed(rows[b"failed"].id, "ping refused")
    assert await store.outbox_counts() == {"done": 1, "failed": 1, "pending": 2}
    table = {
        row[0]: row[1:]
        for row in backend.rows(
            "SELECT id, status, payload, last_error, attempts, next_attempt_at FROM outbox"
        )
    }
    # A delivered row keeps no payload (it may hold a deferral code).
    assert table[rows[b"done"].id][:3] == ("done", b"", None)
    assert table[rows[b"retry"].id] == ("pending", b"retry", "ping answered 503", 1, T0 + 5)
    assert table[rows[b"failed"].id][:3] == ("failed", b"failed", "ping refused")

    # The retry is due at its time, not before.
    assert await store.claim_outbox(T0 + 4, 10, lease_seconds=60) == []
    retried = await store.claim_outbox(T0 + 5, 10, lease_seconds=60)
    assert [(r.payload, r.attempts) for r in retried] == [(b"retry", 2)]

    # The purge forgets finished rows queued before the cut, never pending ones.
    await store.outbox_purge(T0 - 1)
    assert await store.outbox_counts() == {"done": 1, "failed": 1, "pending": 2}
    await store.outbox_purge(T0)
    assert await store.outbox_counts() == {"pending": 2}


async def test_a_dedupe_key_is_queued_once_until_its_row_is_purged(
    store: Store, backend: Backend
) -> None:
    assert await store.enqueue("notice", b"first", T0, dedupe_key="notice:arq-1")
    assert not await store.enqueue("notice", b"second", T0 + 1, dedupe_key="notice:arq-1")
    assert await store.enqueue("notice", b"other", T0, dedupe_key="notice:arq-2")
    # Without a key, as before: every row is queued.
    assert await store.enqueue("notice", b"plain", T0)
    assert await store.enqueue("notice", b"plain", T0)
    rows = await store.claim_outbox(T0 + 1, 10, lease_seconds=60)
    assert sorted(r.payload for r in rows) == [b"first", b"other", b"plain", b"plain"]
    assert sorted(backend.rows("SELECT dedupe_key FROM outbox WHERE dedupe_key IS NOT NULL")) == [
        ("notice:arq-1",),
        ("notice:arq-2",),
    ]
    # Delivered, the row keeps its key: the message is not sent again.
    first = next(r for r in rows if r.payload == b"first")
    await store.outbox_done(first.id)
    assert not await store.enqueue("notice", b"again", T0 + 2, dedupe_key="notice:arq-1")
    # Purged, the key is free.
    await store.outbox_purge(T0 + 1)
    assert await store.enqueue("notice", b"again", T0 + 2, dedupe_key="notice:arq-1")


async def test_replicas_queueing_one_key_at_once_queue_it_once(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for round_ in range(5):
        queued = await asyncio.gather(
            *(
                stores[n % 3].enqueue("notice", f"{n}".encode(), T0, dedupe_key=f"key-{round_}")
                for n in range(6)
            )
        )
        assert sorted(queued) == [False] * 5 + [True]
    assert await stores[0].outbox_counts() == {"pending": 5}
