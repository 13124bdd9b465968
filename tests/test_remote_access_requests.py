"""`RemoteAccessRequests` (bridge/access_requests/remote_backend.py) with real parts.

The remote PDP and its access request service are a second bridge process serving the demo
policies (requestable denials pointing at its own `/access/v1/requests`, a demo approver
key, private callbacks allowed, an API key for its PEPs): its approvers decide, and its
outbox sends the signed callbacks. What that bridge would not do on demand (503 then 202,
a 201 with the outcome, `Retry-After`, an unknown `result.mode`) comes from a small fake
service on loopback. On this side: the real SQLite store, `RemotePDP` for metadata, and the
callback route served by uvicorn in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.access_requests.remote_backend import RemoteAccessRequests, callback_routes
from bridge.access_requests.remote_client import AccessRequestRefused, AccessRequestUnavailable
from bridge.access_requests.service import DeniedEvaluation
from bridge.authzen.errors import PDPError
from bridge.authzen.models import EvaluationRequest
from bridge.authzen.remote import RemotePDP
from bridge.demo_approvers import mint
from bridge.settings import RemotePDPSettings, Settings, load_settings
from bridge.store.contract.remote_access_requests import RemoteTaskRecord
from bridge.store.sqlite import SQLiteStore
from tests.conftest import POLICIES, bridge_process, free_port

KEY = "remote-pep-key"
CONTEXT = {"client_id": "demo-agent"}
EXPORT = {"type": "CustomerRecord", "id": "cust-0001"}, {"name": "export"}
PAYMENT = (
    {"type": "Payment", "id": "pay-1", "properties": {"amount_minor": 500000, "currency": "EUR"}},
    {"name": "initiate"},
)


Store = SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def evaluation(resource: dict[str, Any], action: dict[str, Any]) -> EvaluationRequest:
    subject = {"type": "user", "id": "alice"}
    return EvaluationRequest.model_validate(
        {"subject": subject, "resource": resource, "action": action, "context": CONTEXT}
    )


@contextlib.asynccontextmanager
async def serving(make_app: Callable[[str], Starlette]) -> AsyncIterator[str]:
    """uvicorn in this event loop on a loopback port; `make_app` gets the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(make_app(url), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return value


async def terminal_rows(store: Store) -> list[str]:
    rows = await store.claim_outbox(time.time() + 10_000, 100, 60)
    return [row.payload.decode() for row in rows if row.kind == "task_terminal"]


def backend(
    store: Store,
    pdp_url: str,
    http: httpx.AsyncClient,
    public_url: str,
    clock: Callable[[], float] = time.time,
) -> tuple[RemotePDP, RemoteAccessRequests]:
    """The remote PDP (for metadata) and the backend, with the same settings."""
    settings = RemotePDPSettings.model_validate(
        {"url": pdp_url, "api_key": KEY, "retries": 1, "backoff_seconds": 0}
    )
    pdp = RemotePDP(settings)
    ars = RemoteAccessRequests(
        store, pdp, settings, http, public_url=public_url, allow_private=True, clock=clock
    )
    return pdp, ars


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(tmp_path / "bridge.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


# -- against a second bridge ------------------------------------------------------------


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    port, folder = free_port(), tmp_path_factory.mktemp("remote-ars")
    config = folder / "bridge.toml"
    config.write_text(
        f'[server]\npublic_url = "http://127.0.0.1:{port}"\n[reload]\nenabled = false\n'
        '[access_requests]\ndemo_approver_key_file = "demo.jwk"\nallow_private_callbacks = true\n'
        f"[stores.default]\npath = {json.dumps(str(POLICIES / 'default'))}\n"
        f'[stores.default.auth]\napi_keys = ["{KEY}"]\n',
        encoding="utf-8",
    )
    with bridge_process(config, port) as proc:
        yield proc.url, load_settings(config)  # type: ignore[attr-defined]


async def decide(remote: tuple[str, Settings], task_id: str, approver: str, **body: Any) -> None:
    url, settings = remote
    headers = {"Authorization": f"Bearer {mint(settings, approver, 10)}"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/access/v1/approvals/{task_id}", json=body, headers=headers
        )
        assert answer.status_code == 200, answer.text


async def denied(
    pdp: RemotePDP, *pairs: tuple[dict[str, Any], dict[str, Any]]
) -> list[DeniedEvaluation]:
    requests = [evaluation(*pair) for pair in pairs]
    decisions = await pdp.evaluations(requests)
    assert all(not d.decision and "access_request" in (d.context or {}) for d in decisions)
    return [DeniedEvaluation(r, d.context or {}) for r, d in zip(requests, decisions, strict=True)]


async def test_file_and_signed_callback_settle_an_approved_request(
    remote: tuple[str, Settings], store: Store, http: httpx.AsyncClient
) -> None:
    made: list[tuple[RemotePDP, RemoteAccessRequests]] = []

    def app(url: str) -> Starlette:
        made.append(backend(store, remote[0], http, url))
        return Starlette(routes=callback_routes(made[0][1]))

    async with serving(app) as ours:
        pdp, ars = made[0]
        async with pdp:
            filed = await ars.file(await denied(pdp, EXPORT), "demo-agent")
            row = await store.remote_task_get(filed.id)
            assert row is not None and row.status == "pending" and filed.id.startswith("rtask_")
            assert row.idempotency_key and row.remote_id and row.item_count == 1
            assert row.status_endpoint == f"{remote[0]}/access/v1/requests/{row.remote_id}"
            assert (await ars.outcome(filed.id)).status == "pending"

            unknown = await http.post(f"{ours}/access/v1/callbacks", json={"state": "guess"})
            assert unknown.status_code == 404
            assert unknown.headers["content-type"] == "application/problem+json"

            await decide(remote, row.remote_id, "manager-1", decision="approve")

            async def settled() -> RemoteTaskRecord | None:
                found = await store.remote_task_get(filed.id)
                return found if found is not None and found.status != "pending" else None

            assert (await eventually(settled)).status == "approved"  # only a callback did it
            assert await terminal_rows(store) == [filed.id]
            outcome = await ars.outcome(filed.id)
            assert outcome.status == "approved" and outcome.approvals[0]["id"]
            again = evaluation(*EXPORT)
            context = {**CONTEXT, "approval": outcome.approvals[0]}
            assert (await pdp.evaluate(again.model_copy(update={"context": context}))).decision


async def test_bundle_partial_through_refresh_and_cancel(
    remote: tuple[str, Settings], store: Store, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    pdp, ars = backend(store, remote[0], http, "http://127.0.0.1:9", clock)  # no callbacks heard
    async with pdp:
        filed = await ars.file(await denied(pdp, EXPORT, PAYMENT), "demo-agent")
        row = await store.remote_task_get(filed.id)
        assert row is not None and row.item_count == 2 and row.remote_id
        await decide(remote, row.remote_id, "manager-1", decision="approve", items=[0])
        await decide(remote, row.remote_id, "finance-1", decision="deny", items=[1])
        assert (await ars.outcome(filed.id)).status == "pending"  # nothing read yet
        clock.now += 120
        assert await ars.refresh_due() == 1
        outcome = await ars.outcome(filed.id)
        assert outcome.status == "partial" and outcome.approvals[0]["id"]
        assert outcome.approvals[1] == {}
        assert await terminal_rows(store) == [filed.id]

        other = await ars.file(await denied(pdp, EXPORT), "demo-agent")
        await ars.cancel(other.id, "another-client")  # not theirs: nothing happens
        assert (await ars.outcome(other.id)).status == "pending"
        await ars.cancel(other.id, "demo-agent")
        assert (await ars.outcome(other.id)).status == "cancelled"
        cancelled = await store.remote_task_get(other.id)
        assert cancelled is not None and cancelled.status_endpoint
        seen = await http.get(cancelled.status_endpoint, headers={"Authorization": KEY})
        assert seen.json()["task"]["status"] == "cancelled"

        late = await ars.file(await denied(pdp, EXPORT), "demo-agent")
        late_row = await store.remote_task_get(late.id)
        assert late_row is not None and late_row.remote_id
        await decide(remote, late_row.remote_id, "manager-1", decision="approve")
        await ars.cancel(late.id, "demo-agent")  # the service answers 409: fine
        assert (await ars.outcome(late.id)).status == "cancelled"
        assert sorted(await terminal_rows(store)) == sorted([other.id, late.id])


# -- against a fake service -------------------------------------------------------------


class FakeARS:
    """Answers from scripted queues; records what it was sent."""

    def __init__(self, jwks_uri: str | None = None) -> None:
        self.url, self.jwks_uri = "", jwks_uri
        self.submits: list[tuple[int, Any, dict[str, str]]] = []
        self.reads: list[tuple[int, Any, dict[str, str]]] = []
        self.seen: list[Request] = []
        self.bodies: list[Any] = []

    def task(self, status: str, **members: Any) -> dict[str, Any]:
        endpoint = f"{self.url}/access/v1/requests/arq_1"
        task = {"id": "arq_1", "status": status, "status_endpoint": endpoint}
        return {"task": {**task, "links": {"cancel": endpoint + "/cancel"}}, **members}

    def app(self, url: str) -> Starlette:
        self.url = url

        async def metadata(request: Request) -> Response:
            doc = {
                "policy_decision_point": url,
                "access_evaluation_endpoint": url + "/e",
                "access_request_endpoint": url + "/access/v1/requests",
            }
            return JSONResponse({**doc, **({"jwks_uri": self.jwks_uri} if self.jwks_uri else {})})

        def answer(queue: list[tuple[int, Any, dict[str, str]]], default: Any) -> Any:
            async def endpoint(request: Request) -> Response:
                self.seen.append(request)
                self.bodies.append(await request.body())
                status, body, headers = queue.pop(0) if queue else (200, default(), {})
                return JSONResponse(body, status, headers)

            return endpoint

        return Starlette(
            routes=[
                Route("/.well-known/authzen-configuration", metadata),
                Route("/access/v1/requests", answer(self.submits, dict), methods=["POST"]),
                Route(
                    "/access/v1/requests/arq_1", answer(self.reads, lambda: self.task("pending"))
                ),
            ]
        )


@contextlib.asynccontextmanager
async def faked(
    store: Store, http: httpx.AsyncClient, fake: FakeARS, clock: Clock
) -> AsyncIterator[RemoteAccessRequests]:
    async with serving(fake.app) as url:
        pdp, ars = backend(store, url, http, "http://127.0.0.1:9", clock)
        async with pdp:
            yield ars


def fake_denial(fake: FakeARS, endpoint: str | None = None) -> list[DeniedEvaluation]:
    access = {
        "endpoint": endpoint or fake.url + "/access/v1/requests",
        "template": "manager",
        "expires_at": "2099-01-01T00:00:00Z",
        "binding_token": "eyJ.x-y_z.sig",
    }
    context = {"evaluation_id": "eval_1", "reason": "approval_required", "access_request": access}
    return [DeniedEvaluation(evaluation(*EXPORT), context)]


async def test_submission_retries_keep_the_idempotency_key(
    store: Store, http: httpx.AsyncClient
) -> None:
    fake, clock = FakeARS(), Clock()
    async with faked(store, http, fake, clock) as ars:
        fake.submits += [(503, {}, {}), (202, fake.task("pending"), {})]
        filed = await ars.file(fake_denial(fake), "demo-agent")
        row = await store.remote_task_get(filed.id)
        assert row is not None and row.status == "pending"
        keys = [r.headers["idempotency-key"] for r in fake.seen]
        assert keys == [row.idempotency_key] * 2 and fake.seen[0].headers["authorization"] == KEY
        body = json.loads(fake.bodies[0])
        assert body["denial"]["binding_token"] == "eyJ.x-y_z.sig" and body["client"] == {
            "id": "demo-agent"
        }
        assert body["callback"]["endpoint"] == "http://127.0.0.1:9/access/v1/callbacks"
        assert body["callback"]["state"] not in json.dumps(row.__repr__())  # kept hashed only

        fake.submits.append((400, {"type": "urn:x:not_requestable", "detail": "no"}, {}))
        with pytest.raises(AccessRequestRefused) as refused:
            await ars.file(fake_denial(fake), "demo-agent")
        assert refused.value.problem_type == "urn:x:not_requestable"
        fake.submits += [(503, {}, {}), (503, {}, {})]
        with pytest.raises(AccessRequestUnavailable):
            await ars.file(fake_denial(fake), "demo-agent")
        before = len(fake.seen)
        with pytest.raises(PDPError):  # not a trusted origin: nothing is sent
            await ars.file(fake_denial(fake, "https://evil.example/requests"), "demo-agent")
        assert len(fake.seen) == before


async def test_refresh_backoff_retry_after_and_outcomes(
    store: Store, http: httpx.AsyncClient
) -> None:
    fake, clock = FakeARS(), Clock()
    async with faked(store, http, fake, clock) as ars:
        fake.submits.append((202, fake.task("pending"), {}))
        filed = await ars.file(fake_denial(fake), "demo-agent")

        async def row() -> RemoteTaskRecord:
            found = await store.remote_task_get(filed.id)
            assert found is not None
            return found

        assert 1.6 <= (await row()).next_check_at - clock.now <= 2.4  # type: ignore[operator]
        assert await ars.refresh_due() == 0  # not due yet
        gaps = []
        for _ in range(7):
            clock.now = (await row()).next_check_at or 0
            assert await ars.refresh_due() == 1
            gaps.append(((await row()).next_check_at or 0) - clock.now)
        assert gaps[0] < gaps[2] < gaps[4] and max(gaps) <= 60 and gaps[-1] >= 48
        clock.now += 60
        fake.reads += [(503, {}, {"Retry-After": "30"}), (500, {}, {})]
        await ars.refresh_due()
        assert (await row()).next_check_at == clock.now + 30 and (await row()).failures == 1
        clock.now += 30
        await ars.refresh_due()  # status endpoint down: still pending, never approved
        assert (await row()).status == "pending" and (await row()).failures == 2
        assert (await ars.outcome(filed.id)).status == "pending"
        clock.now += 60
        odd = {
            "mode": "https://example.com/other",
            "approval": {"id": "a", "approved_until": "2099-01-01T00:00:00Z"},
        }
        fake.reads.append((200, fake.task("approved", result=odd), {}))
        await ars.refresh_due()
        assert (await row()).status == "approved" and await terminal_rows(store) == [filed.id]
        assert (await ars.outcome(filed.id)).status == "failed"  # unknown mode: not approved

        fake.submits.append((201, fake.task("on_hold"), {}))  # an unknown status at once
        held = await ars.file(fake_denial(fake), "demo-agent")
        assert (await ars.outcome(held.id)).status == "on_hold"
        assert await terminal_rows(store) == [held.id]  # queued, after a short grace
        fake.submits.append((202, fake.task("pending"), {}))
        late = await ars.file(fake_denial(fake), "demo-agent")
        clock.now += 20_000  # past expires_at while pending: expired, without a read
        reads = len(fake.seen)
        await ars.refresh_due()
        assert (await ars.outcome(late.id)).status == "expired" and len(fake.seen) == reads


async def test_callbacks_are_hints(store: Store, http: httpx.AsyncClient) -> None:
    fake, clock = FakeARS(), Clock()
    async with faked(store, http, fake, clock) as ars:
        fake.submits.append((202, fake.task("pending"), {}))
        filed = await ars.file(fake_denial(fake), "demo-agent")
        state = json.loads(fake.bodies[0])["callback"]["state"]
        lying = {"state": state, "task": {"id": "arq_1", "status": "approved"}}
        async with serving(lambda url: Starlette(routes=callback_routes(ars))) as ours:
            url = f"{ours}/access/v1/callbacks"
            assert (
                await http.post(url, json={**lying, "task": {"id": "arq_2"}})
            ).status_code == 400
            assert (await http.post(url, content=b"{}")).status_code == 415
            assert (await http.post(url, json=lying)).status_code == 204  # read: still pending
            assert (await ars.outcome(filed.id)).status == "pending"
            clock.now += 5
            fake.reads.append((200, fake.task("denied"), {}))
            assert (await http.post(url, json=lying)).status_code == 204
            assert (await ars.outcome(filed.id)).status == "denied"
            assert await terminal_rows(store) == [filed.id]

    signed, clock = FakeARS(jwks_uri="http://127.0.0.1:9/jwks"), Clock()
    async with faked(store, http, signed, clock) as ars:
        signed.submits.append((202, signed.task("pending"), {}))
        await ars.file(fake_denial(signed), "demo-agent")
        state = json.loads(signed.bodies[0])["callback"]["state"]
        async with serving(lambda url: Starlette(routes=callback_routes(ars))) as ours:
            refused = await http.post(f"{ours}/access/v1/callbacks", json={"state": state})
            assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
