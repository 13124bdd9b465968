"""A deferral's life after the deferred response: resolution by its access request,
redemption (exactly once), refusal at redemption, cancellation through revocation, expiry
and clean-up. Real SQLite store, a clock the tests move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.deferral import DeferralService, Resolution
from bridge.errors import AccessDenied, InvalidGrant, OAuthError
from bridge.oauth.errors import InvalidDPoPProof
from bridge.store.contract.deferrals import CANCELLED, DENIED, EXPIRED, PENDING, RESOLVED_OK
from tests.test_deferral_support import (
    KEK,
    SNAPSHOT,
    DeferralStore,
    FakeClock,
    approve,
    deny_all,
    make_client,
    make_settings,
    open_store,
)

CLIENT = make_client("agent-1")
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DeferralStore]:
    async with open_store(tmp_path / "bridge.sqlite3") as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: DeferralStore, clock: FakeClock) -> DeferralService:
    return DeferralService(store, KEK, make_settings(), clock=clock)


async def defer(
    service: DeferralService, task: str = "task-1", jkt: str | None = None, **kw: Any
) -> str:
    body = await service.defer(
        kw.get("client", CLIENT), jkt, kw.get("snapshot", SNAPSHOT), task, None, None
    )
    return str(body["deferral_code"])


async def status_of(service: DeferralService, store: DeferralStore, code: str) -> str:
    record = await store.deferral_find(service._keys.code_hash(code))
    assert record is not None
    return record.status


# -- resolution --------------------------------------------------------------------------


async def test_resolve_task_decides_each_pending_deferral_of_the_task(
    service: DeferralService, store: DeferralStore
) -> None:
    first = await defer(service, snapshot={"n": 1})
    second = await defer(service, snapshot={"n": 2})
    elsewhere = await defer(service, task="task-2")
    decide = approve(until=2_000_000_000.0)
    assert await service.resolve_task("task-1", decide) == 2
    assert sorted(call[0]["n"] for call in decide.calls) == [1, 2]
    assert {call[1] for call in decide.calls} == {"task-1"}
    assert await status_of(service, store, first) == RESOLVED_OK
    assert await status_of(service, store, second) == RESOLVED_OK
    assert await status_of(service, store, elsewhere) == PENDING
    record = await store.deferral_find(service._keys.code_hash(first))
    assert record is not None and record.resolution == {
        "approved_until": 2_000_000_000.0,
        "approvals": [{"id": "ar_1"}],
    }
    assert await service.resolve_task("task-1", decide) == 0  # nothing pending any more
    assert len(decide.calls) == 2


async def test_a_refusal_denies(service: DeferralService, store: DeferralStore) -> None:
    code = await defer(service)
    assert await service.resolve_task("task-1", deny_all) == 1
    assert await status_of(service, store, code) == DENIED
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, code, None)


async def test_a_resolution_landing_after_expiry_is_discarded(
    service: DeferralService, store: DeferralStore, clock: FakeClock
) -> None:
    code = await defer(service)

    async def slow_decide(snapshot: dict[str, Any], task_id: str) -> Resolution:
        clock.advance(3600)  # the re-evaluation outlives the code
        return Resolution(ok=True)

    assert await service.resolve_task("task-1", slow_decide) == 0
    assert await status_of(service, store, code) == EXPIRED


async def test_an_error_in_decide_leaves_the_deferral_pending(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service)

    async def failing(snapshot: dict[str, Any], task_id: str) -> Resolution:
        raise RuntimeError("PDP down")

    with pytest.raises(RuntimeError):
        await service.resolve_task("task-1", failing)
    assert await status_of(service, store, code) == PENDING
    assert await service.resolve_task("task-1", approve()) == 1  # a retry finishes it


# -- redemption --------------------------------------------------------------------------


async def test_twenty_concurrent_redemptions_one_winner(service: DeferralService) -> None:
    code = await defer(service)
    await service.resolve_task("task-1", approve())
    results = await asyncio.gather(*(service.poll(CLIENT, code, None) for _ in range(20)))
    wins = await asyncio.gather(*(service.redeem(result) for result in results))
    assert wins.count(True) == 1 and wins.count(False) == 19
    with pytest.raises(InvalidGrant):
        await service.poll(CLIENT, code, None)


async def test_concurrent_redemptions_over_separate_connections(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two store objects on one file (as two workers would have): still one winner."""
    path = tmp_path / "shared.sqlite3"
    async with open_store(path) as one, open_store(path) as two:
        services = [DeferralService(s, KEK, make_settings(), clock=clock) for s in (one, two)]
        code = await defer(services[0])
        await services[0].resolve_task("task-1", approve())
        ready = await services[1].poll(CLIENT, code, None)
        wins = await asyncio.gather(*(services[i % 2].redeem(ready) for i in range(20)))
    assert wins.count(True) == 1


async def test_redeem_only_from_resolved_ok(service: DeferralService, store: DeferralStore) -> None:
    code = await defer(service)
    record = await store.deferral_find(service._keys.code_hash(code))
    assert record is not None
    assert await service.redeem(record) is False  # still pending
    await service.resolve_task("task-1", deny_all)
    assert await service.redeem(record) is False  # denied


async def test_a_failed_recheck_at_redemption_denies_for_good(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service)
    await service.resolve_task("task-1", approve())
    ready = await service.poll(CLIENT, code, None)
    await service.deny(ready)
    assert await service.redeem(ready) is False
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, code, None)


# -- cancellation ------------------------------------------------------------------------


async def test_cancel_a_pending_deferral(service: DeferralService, store: DeferralStore) -> None:
    code = await defer(service)
    assert await service.cancel(CLIENT, code, None) == "task-1"
    assert await status_of(service, store, code) == CANCELLED
    assert await service.cancel(CLIENT, code, None) is None  # idempotent, no second task cancel
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, code, None)
    assert await service.resolve_task("task-1", approve()) == 0  # a late approval is discarded


async def test_cancel_an_approved_deferral_before_redemption(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service)
    await service.resolve_task("task-1", approve())
    ready = await service.poll(CLIENT, code, None)
    assert await service.cancel(CLIENT, code, None) == "task-1"
    assert await service.redeem(ready) is False  # never issued
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, code, None)


async def test_cancel_is_silent_for_unknown_foreign_and_final_codes(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service)
    assert await service.cancel(make_client("agent-2"), code, None) is None
    assert await service.cancel(CLIENT, "not-a-code", None) is None
    assert await status_of(service, store, code) == PENDING
    await service.resolve_task("task-1", approve())
    assert await service.redeem(await service.poll(CLIENT, code, None))
    assert await service.cancel(CLIENT, code, None) is None  # redeemed: no change
    with pytest.raises(InvalidGrant):
        await service.poll(CLIENT, code, None)


async def test_cancel_of_a_dpop_bound_code_needs_its_key(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service, jkt=JKT)
    for jkt in (None, "another-thumbprint"):
        with pytest.raises(InvalidDPoPProof):
            await service.cancel(CLIENT, code, jkt)
    assert await status_of(service, store, code) == PENDING
    assert await service.cancel(CLIENT, code, JKT) == "task-1"


async def test_a_shared_task_is_cancelled_with_its_last_deferral(
    service: DeferralService,
) -> None:
    first, second = await defer(service), await defer(service)
    assert await service.cancel(CLIENT, first, None) is None  # the other one still waits
    assert await service.cancel(CLIENT, second, None) == "task-1"


# -- expiry and clean-up -----------------------------------------------------------------


async def test_expire_due_marks_and_reports_tasks(
    service: DeferralService, store: DeferralStore, clock: FakeClock
) -> None:
    early = await service.defer(CLIENT, None, SNAPSHOT, "task-a", clock.now + 100, None)
    late = await defer(service, task="task-b")
    approved = await service.defer(CLIENT, None, SNAPSHOT, "task-c", clock.now + 100, None)
    await service.resolve_task("task-c", approve())
    assert await service.expire_due() == []
    clock.advance(100)
    assert await service.expire_due() == ["task-a", "task-c"]
    assert await status_of(service, store, early["deferral_code"]) == EXPIRED
    assert await status_of(service, store, approved["deferral_code"]) == EXPIRED
    assert await status_of(service, store, late) == PENDING
    assert await service.expire_due() == []  # reported once
    with pytest.raises(OAuthError) as raised:
        await service.poll(CLIENT, early["deferral_code"], None)
    assert raised.value.error == "expired_token"


async def test_final_rows_are_purged_after_the_retention(
    store: DeferralStore, clock: FakeClock
) -> None:
    service = DeferralService(store, KEK, make_settings(), clock=clock, retain_seconds=600)
    cancelled = await defer(service)
    pending = await defer(service, task="task-2")
    await service.cancel(CLIENT, cancelled, None)
    clock.advance(3600 + 599)
    await service.expire_due()
    assert await store.deferral_find(service._keys.code_hash(cancelled)) is not None
    clock.advance(2)
    await service.expire_due()
    assert await store.deferral_find(service._keys.code_hash(cancelled)) is None
    assert await store.deferral_find(service._keys.code_hash(pending)) is None  # expired, then
    with pytest.raises(InvalidGrant):
        await service.poll(CLIENT, cancelled, None)
