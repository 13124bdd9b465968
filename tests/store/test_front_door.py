"""The front door's side of the store contract, on every backend: pushed requests and
interactions used once, codes redeemed once (a second use is seen, and tells what the first
issued), sign-in failures counted across replicas, housekeeping."""

from __future__ import annotations

import asyncio
import time

from bridge.store.contract import AuthorizationCodeRecord, AuthorizationRequestRecord, Store
from tests.store.conftest import Backend
from tests.store.records import unique

pytest_plugins = ["tests.support.plugin"]


def pushed(
    now: float, *, expires_in: float = 60, kind: str = "pushed"
) -> AuthorizationRequestRecord:
    return AuthorizationRequestRecord(
        id_hash=unique("req"),
        kind=kind,  # type: ignore[arg-type]
        client_id="demo-web",
        parameters='{"scope":["customer_records:read"]}',
        created_at=now,
        expires_at=now + expires_in,
        browser_hash="b" * 64 if kind == "interaction" else None,
    )


def code(now: float, *, expires_in: float = 60) -> AuthorizationCodeRecord:
    return AuthorizationCodeRecord(
        code_hash=unique("code"),
        client_id="demo-web",
        grant='{"sub":"alice"}',
        issued_at=now,
        expires_at=now + expires_in,
    )


async def test_a_pushed_request_is_used_once(store: Store) -> None:
    now = time.time()
    record = pushed(now)
    await store.save_authorization_request(record)
    assert await store.find_authorization_request(record.id_hash, now) == record
    used = await store.use_authorization_request(record.id_hash, now)
    assert used is not None and used.used_at == now and used.parameters == record.parameters
    assert await store.use_authorization_request(record.id_hash, now) is None
    assert await store.find_authorization_request(record.id_hash, now) is None


async def test_an_expired_or_unknown_request_is_not_used(store: Store) -> None:
    now = time.time()
    record = pushed(now, expires_in=-1)
    await store.save_authorization_request(record)
    assert await store.find_authorization_request(record.id_hash, now) is None
    assert await store.use_authorization_request(record.id_hash, now) is None
    assert await store.use_authorization_request("unknown", now) is None


async def test_an_interaction_keeps_its_browser(store: Store) -> None:
    now = time.time()
    record = pushed(now, kind="interaction")
    await store.save_authorization_request(record)
    found = await store.find_authorization_request(record.id_hash, now)
    assert found is not None and found.kind == "interaction" and found.browser_hash == "b" * 64


async def test_replicas_using_one_request_at_once_use_it_once(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    now = time.time()
    record = pushed(now)
    await stores[0].save_authorization_request(record)
    results = await asyncio.gather(
        *(s.use_authorization_request(record.id_hash, now) for s in stores for _ in range(3))
    )
    assert sum(r is not None for r in results) == 1


async def test_a_code_is_redeemed_once_and_its_second_use_is_seen(store: Store) -> None:
    now = time.time()
    record = code(now)
    await store.save_authorization_code(record)
    first = await store.use_authorization_code(record.code_hash, now)
    assert first is not None and first[1] == "first" and first[0].grant == record.grant
    assert await store.record_code_tokens(
        record.code_hash,
        refresh_family_id="family-1",
        access_token_jti="jti-1",
        access_token_expires_at=now + 300,
    )
    again = await store.use_authorization_code(record.code_hash, now + 1)
    assert again is not None and again[1] == "again"
    assert again[0].refresh_family_id == "family-1" and again[0].access_token_jti == "jti-1"
    assert again[0].reused_at == now + 1


async def test_a_second_use_before_the_tokens_are_recorded_refuses_the_record(
    store: Store,
) -> None:
    now = time.time()
    record = code(now)
    await store.save_authorization_code(record)
    assert (await store.use_authorization_code(record.code_hash, now) or (None, ""))[1] == "first"
    assert (await store.use_authorization_code(record.code_hash, now) or (None, ""))[1] == "again"
    # The first redemption learns that the code came back: it revokes what it issued.
    assert not await store.record_code_tokens(
        record.code_hash,
        refresh_family_id=None,
        access_token_jti="jti-2",
        access_token_expires_at=now + 300,
    )


async def test_an_expired_or_unknown_code_is_not_redeemed(store: Store) -> None:
    now = time.time()
    record = code(now, expires_in=-1)
    await store.save_authorization_code(record)
    assert await store.use_authorization_code(record.code_hash, now) is None
    assert await store.use_authorization_code("unknown", now) is None


async def test_replicas_redeeming_one_code_at_once_get_one_first_use(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    now = time.time()
    record = code(now)
    await stores[0].save_authorization_code(record)
    results = await asyncio.gather(
        *(s.use_authorization_code(record.code_hash, now) for s in stores for _ in range(3))
    )
    uses = sorted(r[1] for r in results if r is not None)
    assert uses == ["again"] * 8 + ["first"]


async def test_sign_in_failures_count_across_replicas_within_a_window(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    now = time.time()
    key = unique("account:alice")
    counts = await asyncio.gather(*(s.add_login_failure(key, now, 60) for s in stores))
    assert sorted(counts) == [1, 2, 3]
    assert await stores[1].login_failures(key, now) == 3
    # After the window the count starts again.
    assert await stores[2].login_failures(key, now + 61) == 0
    assert await stores[2].add_login_failure(key, now + 61, 60) == 1
    await stores[0].clear_login_failures(key)
    assert await stores[1].login_failures(key, now + 61) == 0


async def test_housekeeping_purges_what_has_expired(store: Store, backend: Backend) -> None:
    now = time.time()
    old_request, live_request = pushed(now - 120), pushed(now)
    old_code, live_code = code(now - 120), code(now)
    for request in (old_request, live_request):
        await store.save_authorization_request(request)
    for item in (old_code, live_code):
        await store.save_authorization_code(item)
    await store.add_login_failure("address:192.0.2.1", now - 120, 60)
    await store.purge_front_door(now)
    requests = {r[0] for r in backend.rows("SELECT id_hash FROM authorization_requests")}
    codes = {r[0] for r in backend.rows("SELECT code_hash FROM authorization_codes")}
    assert live_request.id_hash in requests and old_request.id_hash not in requests
    assert live_code.code_hash in codes and old_code.code_hash not in codes
    assert backend.rows("SELECT key FROM login_failures") == []


async def test_an_ended_session_is_seen_by_every_replica_until_it_would_have_ended(
    backend: Backend,
) -> None:
    first, second = await backend.open(), await backend.open()
    now = time.time()
    session = unique("session")
    assert not await second.session_ended(session, now)
    await first.end_session(session, now + 60)
    await first.end_session(session, now + 60)  # twice (two sign-out clicks) is fine
    assert await second.session_ended(session, now)
    assert not await second.session_ended(session, now + 61)
    await second.purge_front_door(now + 61)
    assert backend.rows("SELECT session_hash FROM ended_sessions") == []
