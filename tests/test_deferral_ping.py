"""Ping notifications (shared/specs/dtr.md §5) delivered by the real outbox worker to a real
HTTP listener on a loopback port: retries, redirects, suppression, headers, and the SSRF
rules for callback targets."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.deferral import DeferralService
from bridge.deferral.ping import TargetRefused, check_target
from bridge.outbox import OutboxWorker, RetryPolicy
from bridge.store.contract.deferrals import PING_KIND
from tests.conftest import free_port
from tests.test_deferral_support import (
    KEK,
    SNAPSHOT,
    DeferralStore,
    FakeClock,
    Listener,
    approve,
    make_client,
    make_settings,
    open_store,
    self_signed,
)

TOKEN = "5SIVTd4ZzzGctFQr4AqOGdCgyIa40-tCepd-0AcZxFY"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DeferralStore]:
    async with open_store(tmp_path / "bridge.sqlite3") as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())  # the outbox worker runs on real time


def make_service(store: DeferralStore, clock: FakeClock, **kw: Any) -> DeferralService:
    kw.setdefault("allow_private_callbacks", True)
    return DeferralService(store, KEK, make_settings(), clock=clock, **kw)


def make_worker(store: DeferralStore, service: DeferralService) -> OutboxWorker:
    retry = RetryPolicy(first_delay=0.01, max_delay=0.02, max_attempts=4)
    return OutboxWorker(store, {PING_KIND: service.deliver_ping}, retry=retry)


async def run_until(
    worker: OutboxWorker, store: DeferralStore, done: Callable[[dict[str, int]], bool]
) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while True:
        await worker.run_once()
        counts = await store.outbox_counts()
        if done(counts):
            return counts
        assert time.monotonic() < deadline, f"outbox stuck: {counts}"
        await asyncio.sleep(0.02)


async def resolved_with_ping(
    service: DeferralService, endpoint: str, token: str | None = TOKEN
) -> tuple[Any, str]:
    client = make_client("agent-1", endpoint)
    body = await service.defer(client, None, SNAPSHOT, "task-1", None, token)
    assert await service.resolve_task("task-1", approve()) == 1
    return client, str(body["deferral_code"])


async def test_a_500_then_204_is_delivered_once_after_a_retry(
    store: DeferralStore, clock: FakeClock
) -> None:
    service = make_service(store, clock)
    worker = make_worker(store, service)
    with Listener([500, 204]) as listener:
        _, code = await resolved_with_ping(service, listener.url + "/cb?tenant=7")
        assert await run_until(worker, store, lambda c: c.get("done") == 1) == {"done": 1}
        for _ in range(3):
            await worker.run_once()
        assert len(listener.requests) == 2
    for request in listener.requests:
        assert request["method"] == "POST" and request["path"] == "/cb?tenant=7"
        assert json.loads(request["body"]) == {"deferral_code": code}
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["Host"] == f"127.0.0.1:{listener.port}"


async def test_401_is_retried(store: DeferralStore, clock: FakeClock) -> None:
    service = make_service(store, clock)
    with Listener([401, 401, 204]) as listener:
        await resolved_with_ping(service, listener.url + "/cb")
        await run_until(make_worker(store, service), store, lambda c: c.get("done") == 1)
    assert len(listener.requests) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_other_4xx_is_given_up(store: DeferralStore, clock: FakeClock, status: int) -> None:
    service = make_service(store, clock)
    worker = make_worker(store, service)
    with Listener([status]) as listener:
        await resolved_with_ping(service, listener.url + "/cb")
        assert await run_until(worker, store, lambda c: "failed" in c) == {"failed": 1}
        await worker.run_once()
    assert len(listener.requests) == 1


async def test_a_redirect_is_not_followed(store: DeferralStore, clock: FakeClock) -> None:
    service = make_service(store, clock)
    worker = make_worker(store, service)
    with Listener([]) as listener:
        listener.script = [(307, {"Location": listener.url + "/elsewhere"})]
        await resolved_with_ping(service, listener.url + "/cb")
        await run_until(worker, store, lambda c: "failed" in c)
        await worker.run_once()
    assert [r["path"] for r in listener.requests] == ["/cb"]


async def test_no_authorization_header_without_a_notification_token(
    store: DeferralStore, clock: FakeClock
) -> None:
    service = make_service(store, clock)
    with Listener([]) as listener:
        await resolved_with_ping(service, listener.url + "/cb", token=None)
        await run_until(make_worker(store, service), store, lambda c: c.get("done") == 1)
    assert len(listener.requests) == 1
    assert "Authorization" not in listener.requests[0]["headers"]


@pytest.mark.parametrize("after", ["cancel", "expiry", "redemption"])
async def test_no_ping_once_it_is_pointless(
    store: DeferralStore, clock: FakeClock, after: str
) -> None:
    service = make_service(store, clock)
    with Listener([]) as listener:
        client, code = await resolved_with_ping(service, listener.url + "/cb")
        if after == "cancel":
            assert await service.cancel(client, code, None) == "task-1"
        elif after == "expiry":
            clock.advance(3600)
        else:
            assert await service.redeem(await service.poll(client, code, None))
        await run_until(make_worker(store, service), store, lambda c: c.get("done") == 1)
    assert listener.requests == []


async def test_a_network_error_is_retried(store: DeferralStore, clock: FakeClock) -> None:
    service = make_service(store, clock)
    await resolved_with_ping(service, f"http://127.0.0.1:{free_port()}/cb")  # nobody listens
    worker = make_worker(store, service)
    await worker.run_once()
    row = await store._run(
        lambda: store.db.execute("SELECT status, attempts, last_error FROM outbox").fetchone()
    )
    assert row[0] == "pending" and row[1] == 1 and "ConnectError" in row[2]
    assert await run_until(worker, store, lambda c: "failed" in c) == {"failed": 1}


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_loopback_targets_are_refused_unless_private_callbacks_are_allowed(
    store: DeferralStore, clock: FakeClock, scheme: str
) -> None:
    service = make_service(store, clock, allow_private_callbacks=False)
    with Listener([]) as listener:
        await resolved_with_ping(service, f"{scheme}://127.0.0.1:{listener.port}/cb")
        await run_until(make_worker(store, service), store, lambda c: "failed" in c)
    assert listener.requests == []


def fake_resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return table.get(host, [host])

    return resolve


@pytest.mark.parametrize(
    ("url", "allow_private", "allowed"),
    [
        ("https://public.test/cb", False, True),
        ("https://93.184.216.34/cb", False, True),
        ("http://public.test/cb", False, False),  # plain http
        ("ftp://public.test/cb", False, False),
        ("https://user:pw@public.test/cb", False, False),
        ("https://private.test/cb", False, False),
        ("https://mixed.test/cb", False, False),  # one private address is enough to refuse
        ("https://127.0.0.1/cb", False, False),
        ("https://[::1]/cb", False, False),
        ("https://[::ffff:127.0.0.1]/cb", False, False),
        ("https://169.254.169.254/latest", False, False),  # cloud metadata, link-local
        ("https://100.64.0.1/cb", False, False),  # shared address space
        ("https://0.0.0.0/cb", True, False),
        ("https://[ff02::1]/cb", True, False),
        ("https://private.test/cb", True, True),
        ("http://private.test/cb", True, False),  # plain http only to loopback
        ("http://localhost.test/cb", True, True),
        ("http://[::1]:8080/cb", True, True),
        ("https://public.test:99999/cb", True, False),
    ],
)
async def test_target_rules(url: str, allow_private: bool, allowed: bool) -> None:
    resolver = fake_resolver(
        {
            "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
            "private.test": ["10.1.2.3"],
            "mixed.test": ["93.184.216.34", "192.168.1.10"],
            "localhost.test": ["127.0.0.1", "::1"],
        }
    )
    if allowed:
        target = await check_target(url, allow_private=allow_private, resolver=resolver)
        assert target.addresses
    else:
        with pytest.raises(TargetRefused):
            await check_target(url, allow_private=allow_private, resolver=resolver)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "client.test")


async def test_https_goes_to_the_checked_address_and_verifies_the_host_name(
    store: DeferralStore, clock: FakeClock, tls_files: tuple[Path, Path]
) -> None:
    """`client.test` exists only in the resolver given to the sender: the connection must go
    to the address that was checked, while TLS still verifies the certificate's name."""
    cert, key = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    service = make_service(
        store,
        clock,
        ping_verify=ssl.create_default_context(cafile=str(cert)),
        ping_resolver=fake_resolver({"client.test": ["127.0.0.1"]}),
    )
    with Listener([], tls=server_tls) as listener:
        await resolved_with_ping(service, f"https://client.test:{listener.port}/cb")
        await run_until(make_worker(store, service), store, lambda c: c.get("done") == 1)
    assert len(listener.requests) == 1
    assert listener.requests[0]["headers"]["Host"] == f"client.test:{listener.port}"
