"""The lease side of the store contract, on every backend: one holder at a time, renewal by
the holder, hand-over once a lease runs out, and many processes asking at once."""

from __future__ import annotations

import asyncio

from bridge.housekeeping import LEASE_PASSES, Chore, run_forever
from tests.store.conftest import Backend
from tests.store.records import T0

pytest_plugins = ["tests.support.plugin"]


async def test_a_lease_is_held_by_one_holder_until_it_runs_out(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    assert await first.lease_hold("housekeeping", "worker-1", T0, 15)
    # Another holder (another process: another store) is refused while it runs...
    assert not await second.lease_hold("housekeeping", "worker-2", T0 + 5, 15)
    # ...and the refusal changed nothing: the holder renews it.
    assert await first.lease_hold("housekeeping", "worker-1", T0 + 10, 15)
    assert not await second.lease_hold("housekeeping", "worker-2", T0 + 24.9, 15)
    assert backend.rows("SELECT holder, expires_at FROM leases") == [("worker-1", T0 + 25)]
    # The holder stopped renewing (it died): once the lease ran out, the next one takes it.
    assert await second.lease_hold("housekeeping", "worker-2", T0 + 25, 15)
    assert not await first.lease_hold("housekeeping", "worker-1", T0 + 26, 15)


async def test_leases_are_by_name(backend: Backend) -> None:
    store = await backend.open()
    assert await store.lease_hold("housekeeping", "worker-1", T0, 15)
    assert await store.lease_hold("another chore", "worker-2", T0, 15)
    assert sorted(backend.rows("SELECT name, holder FROM leases")) == [
        ("another chore", "worker-2"),
        ("housekeeping", "worker-1"),
    ]


async def test_holders_asking_at_once_get_one_lease(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(4)]
    held = await asyncio.gather(
        *(
            store.lease_hold("housekeeping", f"worker-{n}-{m}", T0, 15)
            for n, store in enumerate(stores)
            for m in range(3)
        )
    )
    assert held.count(True) == 1
    (holder,) = backend.rows("SELECT holder FROM leases WHERE name = 'housekeeping'")
    assert holder[0] == f"worker-{held.index(True) // 3}-{held.index(True) % 3}"


async def test_housekeeping_in_two_processes_runs_each_pass_once_and_survives_its_holder(
    backend: Backend,
) -> None:
    """Two housekeeping loops on one database (two workers, or two replicas): the chores run
    in one of them only; when that one stops, the other takes over once its lease ran out."""
    runs: list[str] = []

    def chore_of(holder: str) -> Chore:
        async def note() -> None:
            runs.append(holder)

        return Chore("note the holder", note)

    pass_seconds = 0.05
    loops = {
        holder: asyncio.create_task(
            run_forever([chore_of(holder)], await backend.open(), pass_seconds, holder)
        )
        for holder in ("worker-1", "worker-2")
    }
    try:
        await asyncio.sleep(40 * pass_seconds)
        first = set(runs)
        assert len(first) == 1 and len(runs) >= 10  # one holder, on (nearly) every pass
        assert len(runs) <= 41  # ...and not twice per pass
        (holder,) = first
        loops.pop(holder).cancel()
        other = next(iter(loops))
        before = len(runs)
        await asyncio.sleep((LEASE_PASSES + 10) * pass_seconds)
        assert runs[before:].count(other) >= 3 and holder not in runs[before + 1 :]
    finally:
        for loop in loops.values():
            loop.cancel()
