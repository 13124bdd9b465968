"""The deferral state machine of the store contract, on every backend: poll bookkeeping,
resolution with its ping, single-use redemption, denial, cancellation, expiry and purge, and
which access requests no live deferral waits on any more; concurrent callers through several
stores on one database (replicas) included."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from bridge.store.contract import DeferralRecord, Store
from bridge.store.contract.deferrals import (
    CANCELLED,
    DENIED,
    EXPIRED,
    PENDING,
    PING_KIND,
    REDEEMED,
    RESOLVED_OK,
)
from tests.store.conftest import Backend
from tests.store.records import HOUR, T0, deferral, unique

pytest_plugins = ["tests.support.plugin"]

RESOLUTION = {"approved_until": T0 + HOUR, "approvals": ["apr-1"]}


def no_ping(record: DeferralRecord) -> None:
    return None


def ping_at(when: float) -> object:
    def build(record: DeferralRecord) -> tuple[bytes, float]:
        return b"ping:" + record.code_hash.encode(), when

    return build


def secrets_of(record: DeferralRecord | None) -> tuple[object, ...]:
    assert record is not None
    return record.code_sealed, record.notification_token_sealed, record.dedupe_key


async def test_create_find_and_find_by_dedupe_key(store: Store) -> None:
    key = unique("dedupe")
    short = deferral(dedupe_key=key, expires_at=T0 + 100)
    long = deferral(dedupe_key=key, expires_at=T0 + 200)
    elsewhere = deferral(dedupe_key=key, client_id="agent-2", expires_at=T0 + 300)
    for record in (short, long, elsewhere):
        await store.deferral_create(record)
    assert await store.deferral_find(short.code_hash) == short
    assert await store.deferral_find("unknown") is None
    # The client's pending deferral of that request that lives longest, if long enough.
    assert await store.deferral_find_pending("agent-1", key, T0 + 50) == long
    assert await store.deferral_find_pending("agent-1", key, T0 + 201) is None
    assert await store.deferral_find_pending("agent-2", key, T0) == elsewhere
    assert await store.deferral_find_pending("agent-1", unique("other"), T0) is None


async def test_a_poll_applies_the_step_in_one_transaction(store: Store) -> None:
    record = deferral()
    await store.deferral_create(record)
    seen: list[DeferralRecord] = []

    def slow_down(current: DeferralRecord) -> tuple[DeferralRecord, str]:
        seen.append(current)
        after = dataclasses.replace(
            current,
            last_poll_at=T0 + 10,
            required_gap=current.required_gap + 5,
            slow_down_count=current.slow_down_count + 1,
        )
        return after, "slow_down"

    assert await store.deferral_poll(record.code_hash, slow_down) == ("slow_down", None)
    assert seen == [record]
    found = await store.deferral_find(record.code_hash)
    assert found is not None
    assert (found.status, found.last_poll_at, found.required_gap, found.slow_down_count) == (
        PENDING,
        T0 + 10,
        10.0,
        1,
    )
    assert secrets_of(found) == secrets_of(record)  # still pending: a ping may still need them
    assert await store.deferral_poll("unknown", slow_down) is None
    assert len(seen) == 1


async def test_a_poll_that_ends_a_deferral_drops_its_secrets_and_names_the_task(
    store: Store,
) -> None:
    task = unique("task")
    first, second = deferral(task_id=task), deferral(task_id=task)
    await store.deferral_create(first)
    await store.deferral_create(second)

    def expire(current: DeferralRecord) -> tuple[DeferralRecord, str]:
        return dataclasses.replace(current, status=EXPIRED), "expired_token"

    # Another deferral still waits on the task: nothing to cancel yet.
    assert await store.deferral_poll(first.code_hash, expire) == ("expired_token", None)
    assert secrets_of(await store.deferral_find(first.code_hash)) == (None, None, None)
    assert await store.deferral_poll(second.code_hash, expire) == ("expired_token", task)
    # A poll of a final deferral ends nothing.
    assert await store.deferral_poll(second.code_hash, expire) == ("expired_token", None)


async def test_polls_from_replicas_at_once_lose_no_update(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    record = deferral()
    await stores[0].deferral_create(record)

    def count(current: DeferralRecord) -> tuple[DeferralRecord, int]:
        after = dataclasses.replace(current, slow_down_count=current.slow_down_count + 1)
        return after, current.slow_down_count

    results = await asyncio.gather(
        *(s.deferral_poll(record.code_hash, count) for s in stores for _ in range(7))
    )
    # Each poll saw the one before it: the counts seen are 0..20, each once.
    assert sorted(verdict for verdict, _ in results) == list(range(21))  # type: ignore[misc]
    found = await stores[1].deferral_find(record.code_hash)
    assert found is not None and found.slow_down_count == 21


async def test_resolve_queues_the_ping_with_the_outcome(store: Store) -> None:
    approved, denied, quiet = deferral(), deferral(), deferral()
    for record in (approved, denied, quiet):
        await store.deferral_create(record)
    ping = ping_at(T0 + 1)
    assert await store.deferral_resolve(
        approved.code_hash,
        ok=True,
        resolution=RESOLUTION,
        now=T0,
        ping=ping,  # type: ignore[arg-type]
    )
    assert await store.deferral_resolve(
        denied.code_hash,
        ok=False,
        resolution={},
        now=T0,
        ping=ping,  # type: ignore[arg-type]
    )
    assert await store.deferral_resolve(
        quiet.code_hash, ok=True, resolution={}, now=T0, ping=no_ping
    )
    found = await store.deferral_find(approved.code_hash)
    assert found is not None and found.status == RESOLVED_OK
    assert found.resolution == RESOLUTION and found.resolved_at == T0
    assert secrets_of(found) == (None, None, None)
    refused = await store.deferral_find(denied.code_hash)
    assert refused is not None and refused.status == DENIED
    # Two pings queued with their outcomes, due when the builder said; none for `quiet`.
    assert await store.claim_outbox(T0 + 0.5, 10, lease_seconds=60) == []
    rows = await store.claim_outbox(T0 + 1, 10, lease_seconds=60)
    assert sorted((r.kind, r.payload) for r in rows) == sorted(
        (PING_KIND, b"ping:" + r.code_hash.encode()) for r in (approved, denied)
    )


async def test_resolve_changes_only_a_pending_deferral_before_its_end(store: Store) -> None:
    done, late = deferral(), deferral(expires_at=T0 + 10)
    await store.deferral_create(done)
    await store.deferral_create(late)
    assert await store.deferral_resolve(
        done.code_hash, ok=True, resolution={}, now=T0, ping=no_ping
    )
    resolved_at = (await store.deferral_find(done.code_hash)).resolved_at  # type: ignore[union-attr]
    ping = ping_at(T0)
    for ok in (True, False):
        assert not await store.deferral_resolve(
            done.code_hash,
            ok=ok,
            resolution={"x": 1},
            now=T0 + 1,
            ping=ping,  # type: ignore[arg-type]
        )
    again = await store.deferral_find(done.code_hash)
    assert again is not None and again.status == RESOLVED_OK
    assert again.resolved_at == resolved_at and again.resolution == {}
    # Past its end: refused, and marked expired.
    assert not await store.deferral_resolve(
        late.code_hash,
        ok=True,
        resolution={},
        now=T0 + 10,
        ping=ping,  # type: ignore[arg-type]
    )
    expired = await store.deferral_find(late.code_hash)
    assert expired is not None and expired.status == EXPIRED
    assert secrets_of(expired) == (None, None, None)
    assert not await store.deferral_resolve("unknown", ok=True, resolution={}, now=T0, ping=ping)  # type: ignore[arg-type]
    assert await store.outbox_counts() == {}


async def test_concurrent_redeemers_get_exactly_one_token(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    for _ in range(5):
        record = deferral()
        await stores[0].deferral_create(record)
        assert not await stores[0].deferral_redeem(record.code_hash, T0)  # still pending
        await stores[0].deferral_resolve(
            record.code_hash, ok=True, resolution={}, now=T0, ping=no_ping
        )
        won = await asyncio.gather(
            *(s.deferral_redeem(record.code_hash, T0 + 1) for s in stores for _ in range(5))
        )
        assert sorted(won) == [False] * 14 + [True]
        found = await stores[2].deferral_find(record.code_hash)
        assert found is not None and found.status == REDEEMED


async def test_redeem_after_the_end_and_deny(store: Store) -> None:
    late, denied = deferral(expires_at=T0 + 10), deferral()
    for record in (late, denied):
        await store.deferral_create(record)
        await store.deferral_resolve(record.code_hash, ok=True, resolution={}, now=T0, ping=no_ping)
    assert not await store.deferral_redeem(late.code_hash, T0 + 10)
    assert await store.deferral_deny(denied.code_hash)
    assert not await store.deferral_deny(denied.code_hash)
    assert not await store.deferral_redeem(denied.code_hash, T0 + 1)
    found = await store.deferral_find(denied.code_hash)
    assert found is not None and found.status == DENIED


async def test_cancel_ends_a_live_deferral_and_names_the_orphaned_task(store: Store) -> None:
    task = unique("task")
    pending, resolved = deferral(task_id=task), deferral(task_id=task)
    late, lonely = deferral(expires_at=T0 + 10), deferral(task_id=None)
    for record in (pending, resolved, late, lonely):
        await store.deferral_create(record)
    await store.deferral_resolve(resolved.code_hash, ok=True, resolution={}, now=T0, ping=no_ping)
    assert await store.deferrals_pending_of_task(task) == [pending]

    assert await store.deferral_cancel(pending.code_hash, T0 + 1) == (True, None)  # one left
    assert await store.deferral_cancel(pending.code_hash, T0 + 1) == (False, None)
    assert await store.deferral_cancel(resolved.code_hash, T0 + 1) == (True, task)
    assert await store.deferral_cancel(late.code_hash, T0 + 10) == (True, late.task_id)
    assert await store.deferral_cancel(lonely.code_hash, T0) == (True, None)
    assert await store.deferral_cancel("unknown", T0) == (False, None)
    statuses = {
        r.code_hash: r.status
        for r in [await store.deferral_find(x.code_hash) for x in (pending, resolved, late)]
        if r is not None
    }
    assert statuses == {
        pending.code_hash: CANCELLED,
        resolved.code_hash: CANCELLED,
        late.code_hash: EXPIRED,
    }
    assert secrets_of(await store.deferral_find(pending.code_hash)) == (None, None, None)
    assert await store.deferrals_pending_of_task(task) == []


async def test_the_last_two_deferrals_of_a_task_ending_at_once_name_it_once(
    backend: Backend,
) -> None:
    one, two = await backend.open(), await backend.open()
    for _ in range(8):
        task = unique("task")
        first, second = deferral(task_id=task), deferral(task_id=task)
        await one.deferral_create(first)
        await one.deferral_create(second)
        results = await asyncio.gather(
            one.deferral_cancel(first.code_hash, T0 + 1),
            two.deferral_cancel(second.code_hash, T0 + 1),
        )
        assert sorted(str(orphan) for _, orphan in results) == sorted(["None", task])


async def test_expiry_and_purge(backend: Backend) -> None:
    store = await backend.open()
    task = unique("task")
    due = [deferral(task_id=task, expires_at=T0 + n) for n in range(3)]
    keeps_task_alive = deferral(task_id=task, expires_at=T0 + HOUR)
    resolved_due = deferral(expires_at=T0 + 5)
    old_final = deferral(expires_at=T0 - HOUR)
    for record in (*due, keeps_task_alive, resolved_due, old_final):
        await store.deferral_create(record)
    await store.deferral_resolve(
        resolved_due.code_hash, ok=True, resolution={}, now=T0, ping=no_ping
    )
    await store.deferral_cancel(old_final.code_hash, T0 - HOUR - 1)

    count, orphaned = await store.deferrals_expire(T0 + 10, limit=2, purge_before=T0 - 100)
    assert count == 2 and orphaned == []  # at most `limit`; the task still has a live one
    count, orphaned = await store.deferrals_expire(T0 + 10, limit=10, purge_before=T0 - 100)
    assert count == 2 and orphaned == [resolved_due.task_id]
    assert await store.deferral_find(old_final.code_hash) is None  # purged
    for record in (*due, resolved_due):
        found = await store.deferral_find(record.code_hash)
        assert found is not None and found.status == EXPIRED
        assert secrets_of(found) == (None, None, None)
    assert await store.deferrals_expire(T0 + 10, limit=10, purge_before=T0 - 100) == (0, [])

    await store.deferral_cancel(keeps_task_alive.code_hash, T0 + 20)
    await store.deferrals_expire(T0 + 20, limit=10, purge_before=T0 + 2 * HOUR)
    assert backend.rows("SELECT COUNT(*) FROM deferrals") == [(0,)]


async def test_replicas_expiring_at_once_expire_each_deferral_once(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    tasks = [unique("task") for _ in range(30)]
    for task in tasks:
        await stores[0].deferral_create(deferral(task_id=task, expires_at=T0))
    results = await asyncio.gather(
        *(s.deferrals_expire(T0 + 1, limit=4, purge_before=0) for s in stores for _ in range(3))
    )
    results += [await stores[0].deferrals_expire(T0 + 1, limit=100, purge_before=0)]
    assert sum(count for count, _ in results) == 30
    named = [task for _, orphaned in results for task in orphaned]
    assert sorted(named) == sorted(tasks)  # each task named once


async def test_the_snapshot_and_resolution_round_trip(store: Store) -> None:
    snapshot = {"grant_type": "urn:x", "details": [{"é": "ü", "n": 1.5}], "none": None}
    record = deferral(snapshot_json=json.dumps(snapshot), jkt="jkt-1", task_id=None)
    await store.deferral_create(record)
    found = await store.deferral_find(record.code_hash)
    assert found == record and found.snapshot == snapshot


async def test_counts_by_state(store: Store) -> None:
    assert await store.deferral_counts() == {}
    records = [deferral() for _ in range(4)]
    for record in records:
        await store.deferral_create(record)
    await store.deferral_resolve(
        records[0].code_hash, ok=True, resolution=RESOLUTION, now=T0, ping=no_ping
    )
    await store.deferral_resolve(
        records[1].code_hash, ok=False, resolution=RESOLUTION, now=T0, ping=no_ping
    )
    assert await store.deferral_counts() == {PENDING: 2, RESOLVED_OK: 1, DENIED: 1}
