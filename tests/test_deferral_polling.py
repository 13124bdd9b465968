"""Polling a deferral code: the validation order of shared/specs/dtr.md §4.2 and the
throttling rules of §4.3, on the real SQLite store with a clock the tests move."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.deferral import DeferralExpired, DeferralService
from bridge.deferral.errors import AuthorizationPending, ExpiredToken, SlowDown
from bridge.errors import AccessDenied, InvalidGrant, InvalidRequest, OAuthError
from bridge.oauth.errors import InvalidDPoPProof
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


def service_for(store: DeferralStore, clock: FakeClock, **settings: Any) -> DeferralService:
    return DeferralService(store, KEK, make_settings(**settings), clock=clock)


@pytest.fixture
def service(store: DeferralStore, clock: FakeClock) -> DeferralService:
    return service_for(store, clock)


async def defer(service: DeferralService, jkt: str | None = None, task: str = "task-1") -> str:
    body = await service.defer(CLIENT, jkt, SNAPSHOT, task, None, None)
    return str(body["deferral_code"])


async def outcome(service: DeferralService, code: str, jkt: str | None = None) -> str:
    """The `error` a poll answers, or "ready" when it may be redeemed."""
    try:
        await service.poll(CLIENT, code, jkt)
    except OAuthError as error:
        return error.error
    return "ready"


async def test_the_deferred_response(service: DeferralService, clock: FakeClock) -> None:
    body = await service.defer(CLIENT, None, SNAPSHOT, "task-1", clock.now + 10_000, None)
    assert set(body) == {"error", "deferral_code", "expires_in", "interval"}
    assert body["error"] == "authorization_pending"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["deferral_code"])  # 256 bits, base64url
    assert body["expires_in"] == 3600  # code_lifetime_seconds: the task lasts longer
    assert body["interval"] == 5
    sooner = await service.defer(CLIENT, None, SNAPSHOT, "task-2", clock.now + 600.5, None)
    assert sooner["expires_in"] == 600  # bounded by the access request
    assert sooner["deferral_code"] != body["deferral_code"]
    with pytest.raises(ValueError):
        await service.defer(CLIENT, None, SNAPSHOT, "task-3", clock.now + 0.5, None)


async def test_pending_answer_repeats_neither_code_nor_interval(service: DeferralService) -> None:
    code = await defer(service)
    with pytest.raises(AuthorizationPending) as raised:
        await service.poll(CLIENT, code, None)
    assert raised.value.body() == {"error": "authorization_pending"}
    assert raised.value.status == 400


async def test_the_first_poll_is_never_slow_down(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    assert await outcome(service, code) == "authorization_pending"  # at once: no previous poll


async def test_a_client_polling_exactly_at_the_interval_is_never_slowed(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    for _ in range(200):
        clock.advance(5)
        assert await outcome(service, code) == "authorization_pending"


async def test_jitter_within_the_tolerance_is_not_too_fast(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    await outcome(service, code)
    for gap in (4.1, 5.7, 4.0, 4.5):
        clock.advance(gap)
        assert await outcome(service, code) == "authorization_pending"
    clock.advance(3.9)  # more than the 1 s tolerance early
    assert await outcome(service, code) == "slow_down"


async def test_an_early_poll_gets_slow_down_and_the_required_gap_grows(
    service: DeferralService, store: DeferralStore, clock: FakeClock
) -> None:
    code = await defer(service)
    code_hash = service._keys.code_hash(code)
    await outcome(service, code)
    clock.advance(2)
    with pytest.raises(SlowDown) as raised:
        await service.poll(CLIENT, code, None)
    assert raised.value.error == "slow_down" and raised.value.status == 400
    record = await store.deferral_find(code_hash)
    assert record is not None
    assert (record.required_gap, record.slow_down_count, record.last_poll_at) == (10, 1, clock.now)
    clock.advance(5)  # the old interval is now too fast
    assert await outcome(service, code) == "slow_down"
    clock.advance(15)
    assert await outcome(service, code) == "authorization_pending"
    record = await store.deferral_find(code_hash)
    assert record is not None
    assert (record.required_gap, record.slow_down_count) == (15, 0)  # the larger gap stays
    clock.advance(5)
    assert await outcome(service, code) == "slow_down"


async def test_a_client_that_adds_five_seconds_after_slow_down_is_not_slowed_again(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    interval = 5.0
    await outcome(service, code)
    clock.advance(1)
    assert await outcome(service, code) == "slow_down"
    interval += 5  # what dtr.md §4.3 asks of the client
    for _ in range(50):
        clock.advance(interval)
        assert await outcome(service, code) == "authorization_pending"


async def test_every_poll_moves_last_poll_so_hammering_stays_too_fast(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    assert await outcome(service, code) == "authorization_pending"
    answers = []
    for _ in range(8):
        clock.advance(3)
        answers.append(await outcome(service, code))
    assert answers == ["slow_down"] * 8


async def test_persistent_over_polling_escalates_to_invalid_request(
    store: DeferralStore, clock: FakeClock
) -> None:
    service = service_for(store, clock, max_slow_downs=3)
    code = await defer(service)
    await outcome(service, code)
    answers = []
    for _ in range(5):
        clock.advance(0.5)
        answers.append(await outcome(service, code))
    assert answers == ["slow_down"] * 3 + ["invalid_request"] * 2
    with pytest.raises(InvalidRequest):
        clock.advance(0.5)
        await service.poll(CLIENT, code, None)
    # The count is of consecutive slow_downs: a poll at the required pace resets it.
    clock.advance(20)
    assert await outcome(service, code) == "authorization_pending"
    clock.advance(0.5)
    assert await outcome(service, code) == "slow_down"


async def test_an_approved_code_is_never_throttled(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    await outcome(service, code)
    clock.advance(1)
    assert await outcome(service, code) == "slow_down"
    until = clock.now + 900
    assert await service.resolve_task("task-1", approve(until=until)) == 1
    for _ in range(3):
        clock.advance(0.1)  # far too early for a pending code
        result = await service.poll(CLIENT, code, None)
    assert result.snapshot == SNAPSHOT
    assert result.approved_until == until
    assert result.approvals == [{"id": "ar_1"}]
    assert result.task_id == "task-1"


async def test_expiry_while_pending(service: DeferralService, clock: FakeClock) -> None:
    code = await defer(service)
    clock.advance(3600)
    with pytest.raises(DeferralExpired) as raised:
        await service.poll(CLIENT, code, None)
    assert raised.value.error == "expired_token"
    assert raised.value.task_id == "task-1"  # the caller cancels the access request
    with pytest.raises(ExpiredToken) as again:
        await service.poll(CLIENT, code, None)
    assert getattr(again.value, "task_id", None) is None  # cancelled once, not per poll
    # A resolution that lands after expiry is discarded.
    assert await service.resolve_task("task-1", approve()) == 0
    assert await outcome(service, code) == "expired_token"


async def test_an_approved_code_past_its_end_is_expired(
    service: DeferralService, clock: FakeClock
) -> None:
    code = await defer(service)
    await service.resolve_task("task-1", approve())
    result = await service.poll(CLIENT, code, None)
    clock.advance(3600)
    assert await outcome(service, code) == "expired_token"
    assert await service.redeem(result) is False


async def test_denied_cancelled_and_redeemed_codes(
    service: DeferralService, clock: FakeClock
) -> None:
    denied = await defer(service, task="task-d")
    await service.resolve_task("task-d", deny_all)
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, denied, None)

    cancelled = await defer(service, task="task-c")
    assert await service.cancel(CLIENT, cancelled, None) == "task-c"
    with pytest.raises(AccessDenied):
        await service.poll(CLIENT, cancelled, None)

    redeemed = await defer(service, task="task-r")
    await service.resolve_task("task-r", approve())
    assert await service.redeem(await service.poll(CLIENT, redeemed, None)) is True
    with pytest.raises(InvalidGrant) as raised:
        await service.poll(CLIENT, redeemed, None)
    assert "already redeemed" in (raised.value.description or "")

    # Final answers stay final, also past the code's end and however fast the polls come.
    clock.advance(4000)
    for code, error in ((denied, "access_denied"), (cancelled, "access_denied")):
        assert await outcome(service, code) == error
    assert await outcome(service, redeemed) == "invalid_grant"


async def test_unknown_and_other_clients_codes_look_the_same(service: DeferralService) -> None:
    code = await defer(service)
    other = make_client("agent-2")
    answers = []
    for who, value in ((other, code), (CLIENT, "x" * 43), (CLIENT, ""), (CLIENT, "y" * 5000)):
        with pytest.raises(InvalidGrant) as raised:
            await service.poll(who, value, None)
        answers.append(raised.value.body())
    assert all(answer == answers[0] for answer in answers)
    assert "redeemed" not in str(answers[0])
    assert await outcome(service, code) == "authorization_pending"  # untouched by the others


async def test_a_dpop_bound_code_needs_a_proof_with_its_key(
    service: DeferralService, store: DeferralStore
) -> None:
    code = await defer(service, jkt=JKT)
    for jkt in (None, "another-thumbprint"):
        with pytest.raises(InvalidDPoPProof):
            await service.poll(CLIENT, code, jkt)
    record = await store.deferral_find(service._keys.code_hash(code))
    assert record is not None and record.last_poll_at is None  # refused polls change nothing
    assert await outcome(service, code, JKT) == "authorization_pending"
    await service.resolve_task("task-1", approve())
    with pytest.raises(InvalidDPoPProof):
        await service.poll(CLIENT, code, None)  # not even an approved code without the key
    assert await outcome(service, code, JKT) == "ready"


async def test_a_code_without_dpop_is_not_polled_with_a_proof(service: DeferralService) -> None:
    code = await defer(service)
    with pytest.raises(InvalidDPoPProof):
        await service.poll(CLIENT, code, JKT)
    assert await outcome(service, code) == "authorization_pending"
