"""ARAP callbacks (ARAP §12): allowed targets, and delivery from the outbox to a real HTTP
listener on the loopback interface (so these tests turn `allow_private_callbacks` on)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bridge.access_requests import callbacks
from bridge.access_requests.callbacks import CallbackSender, allowed_target, check_callback
from bridge.access_requests.problems import BadRequest
from bridge.outbox import Delivered, GiveUp, OutboxWorker, Retry
from bridge.store.contract import OutboxRow
from tests.conftest import ServerThread, free_port
from tests.test_arap_submission import PEP
from tests.test_arap_support import BRIDGE, MARIA, Harness, harness, secret_doc


class Receiver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.calls.append((request.url.path, dict(request.headers), body))
        status = {"/ok": 204, "/fail": 503, "/busy": 429, "/gone": 404}.get(request.url.path)
        if status is None:
            return RedirectResponse("/ok", status_code=302)
        return Response(status_code=status)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[ServerThread, Receiver]]:
    handler = Receiver()
    app = Starlette(routes=[Route("/{path}", handler.handle, methods=["POST"])])
    with ServerThread(app) as server:
        yield server, handler


async def approved_with_callback(h: Harness, endpoint: str, **callback: Any) -> str:
    body = await h.submission(secret_doc(), callback={"endpoint": endpoint, **callback})
    task_id = (await h.service.submit(body, PEP, None)).id
    await h.service.decide(task_id, MARIA, "approve")
    return task_id


async def callback_rows(h: Harness) -> list[OutboxRow]:
    rows = await h.store.claim_outbox(h.clock() + 10, 50, 60)
    return [row for row in rows if row.kind == callbacks.KIND]


def test_callback_targets() -> None:
    public = ["https://pep.example.com/cb", "https://93.184.216.34/cb"]
    private = [
        "http://pep.example.com/cb",
        "https://localhost/cb",
        "https://app.localhost/cb",
        "https://10.0.0.8/cb",
        "https://169.254.169.254/latest",
        "https://[::1]/cb",
        "https://user@pep.example.com/cb",
        "https://pep.example.com/cb#frag",
        "https://pep.example.com:99999/cb",
        "pep.example.com/cb",
    ]
    assert all(allowed_target(url, False) for url in public)
    assert not any(allowed_target(url, False) for url in private)
    assert allowed_target("http://127.0.0.1:8080/cb", True)
    assert not allowed_target("ftp://127.0.0.1/cb", True)
    assert check_callback(
        {"endpoint": public[0], "state": "s", "events": ["approved"]}, allow_private=False
    ) == {
        "endpoint": public[0],
        "state": "s",
        "events": ["approved"],
    }
    for bad in ({"endpoint": private[0]}, {"endpoint": public[0], "events": "approved"}, "x"):
        with pytest.raises(BadRequest):
            check_callback(bad, allow_private=False)


async def test_a_callback_is_delivered_signed(
    tmp_path: Path, receiver: tuple[ServerThread, Receiver]
) -> None:
    server, handler = receiver
    async with harness(tmp_path) as h:
        endpoint = server.url + "/ok"
        task_id = await approved_with_callback(h, endpoint, state={"flow": 7})
        [row] = await callback_rows(h)
        before = len(handler.calls)
        assert isinstance(await h.ars.callbacks(row), Delivered)
        _, headers, raw = handler.calls[before]
        body = json.loads(raw)
        assert body["state"] == {"flow": 7}
        assert (body["task"]["id"], body["task"]["status"]) == (task_id, "approved")
        assert body["result"]["approval"]["id"].startswith("apr_")
        scheme, _, token = headers["authorization"].partition(" ")
        assert scheme == "Bearer"
        keys = KeySet.import_key_set(await h.keys.jwks())  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys)
        assert decoded.header["typ"] == "arap-callback+jwt"
        claims = decoded.claims
        assert (claims["iss"], claims["aud"], claims["task_id"]) == (BRIDGE, endpoint, task_id)
        digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
        assert claims["body_sha256"] == digest
        assert claims["exp"] - claims["iat"] == 300


async def test_delivery_outcomes(tmp_path: Path, receiver: tuple[ServerThread, Receiver]) -> None:
    server, handler = receiver
    async with harness(tmp_path) as h:
        expected = {"/fail": Retry, "/busy": Retry, "/gone": GiveUp, "/moved": GiveUp}
        for path in expected:
            h.clock.advance(1)
            await approved_with_callback(h, server.url + path)
        rows = await callback_rows(h)
        for path, row in zip(expected, rows, strict=True):
            before = len(handler.calls)
            assert isinstance(await h.ars.callbacks(row), expected[path]), path
            assert [call[0] for call in handler.calls[before:]] == [path]  # no redirect followed
        await approved_with_callback(h, f"http://127.0.0.1:{free_port()}/nobody")
        [row] = await callback_rows(h)
        assert isinstance(await h.ars.callbacks(row), Retry)


async def test_only_the_events_asked_for_are_sent(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await approved_with_callback(h, "https://pep.example.com/cb", events=["denied"])
        assert [kind for kind, _ in await h.outbox()] == ["task_terminal"]


async def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_private_targets_are_refused_at_delivery(
    tmp_path: Path, receiver: tuple[ServerThread, Receiver]
) -> None:
    server, handler = receiver
    async with harness(tmp_path) as h:
        await approved_with_callback(h, server.url + "/ok")
        [row] = await callback_rows(h)
        strict = CallbackSender(
            h.store, h.keys, BRIDGE, h.ars.urls, allow_private=False, clock=h.clock
        )
        before = len(handler.calls)
        assert isinstance(await strict(row), GiveUp)
        assert len(handler.calls) == before
        # Given up, not sent: nothing listens there, so an attempt would have been retried.
        h.clock.advance(1)
        await approved_with_callback(h, "https://localhost:8443/cb")
        [row] = await callback_rows(h)
        assert isinstance(await strict(row), GiveUp)
        # A name that passes the URL check but resolves to loopback is refused at delivery.
        h.clock.advance(1)
        await approved_with_callback(h, "https://pep.test:8443/cb")
        [row] = await callback_rows(h)
        resolving = CallbackSender(
            h.store,
            h.keys,
            BRIDGE,
            h.ars.urls,
            allow_private=False,
            clock=h.clock,
            resolver=loopback,
        )
        outcome = await resolving(row)
        assert isinstance(outcome, GiveUp)
        assert "not a public address" in outcome.reason


async def test_the_outbox_worker_delivers(
    tmp_path: Path, receiver: tuple[ServerThread, Receiver]
) -> None:
    server, _ = receiver
    async with harness(tmp_path) as h:
        await approved_with_callback(h, server.url + "/ok")

        async def consumed(row: OutboxRow) -> Delivered:
            return Delivered()

        # The callback, and what others consume: the follow-up and the approvers' notice.
        others = {"task_terminal": consumed, "approval_needed": consumed}
        worker = OutboxWorker(h.store, {**h.ars.outbox_handlers(), **others})
        assert await worker.run_once() == 3
        assert await h.store.outbox_counts() == {"done": 3}
