"""Helpers of the ARAP companion profile tests (tests/test_arap_profile_*.py): the real
bridge (`create_app`, real SQLite, real Cedar with a copy of the demo policies) served by
uvicorn on a loopback port in the test's own event loop, so a test can also reach the
app's parts (its binding tokens, its store) without crossing threads; listeners that record
what the bridge sends them; and the ARAP requests these tests make over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app import create_app
from bridge.demo_approvers import mint
from bridge.settings import Settings, load_settings
from tests.conftest import POLICIES
from tests.dtr_fixtures import dtr_clients, dtr_config_text
from tests.oauth_fixtures import server_config

REQUESTS = "/access/v1/requests"
APPROVALS = "/access/v1/approvals"
PROBLEM = "application/problem+json"
ARAP_ERROR = "urn:openid:authzen:access-request:error:"


@contextlib.asynccontextmanager
async def served(make_app: Callable[[str], Any], *, lifespan: str = "on") -> AsyncIterator[str]:
    """uvicorn in this event loop on a loopback port; `make_app` gets the base URL first."""
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(make_app(url), log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


def demo_store(folder: Path) -> Path:
    """A copy of the demo policy store, for a test to change."""
    store = folder / "policies"
    shutil.copytree(POLICIES / "default", store)
    return store


@dataclass
class Bridge:
    """The running bridge: its URL, settings and app, and an HTTP client for it."""

    url: str
    settings: Settings
    app: Starlette
    http: httpx.AsyncClient

    def approver(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, sub, 10)}"}

    async def evaluate(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post("/access/v1/evaluation", json=request)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def denial(self, request: dict[str, Any]) -> dict[str, Any]:
        """The `denial` member echoing the requestable denial of `request`."""
        decision = await self.evaluate(request)
        assert decision["decision"] is False and "access_request" in decision["context"]
        context = decision["context"]
        access = context["access_request"]
        return {
            "evaluation_id": context["evaluation_id"],
            "expires_at": access["expires_at"],
            "binding_token": access["binding_token"],
            "reason": context["reason"],
        }

    async def task(self, task_id: str, **headers: str) -> dict[str, Any]:
        answer = await self.http.get(f"{REQUESTS}/{task_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def decide(self, task_id: str, approver: str, **decision: Any) -> dict[str, Any]:
        answer = await self.http.post(
            f"{APPROVALS}/{task_id}", json=decision, headers=self.approver(approver)
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()["access_request"]
        return body


@contextlib.asynccontextmanager
async def bridge(
    folder: Path,
    *,
    store: Path | None = None,
    extra: str = "",
    deferral: dict[str, Any] | None = None,
    adjust: Callable[[Settings], Settings] | None = None,
) -> AsyncIterator[Bridge]:
    """The bridge of the DTR tests (the demo approver issuer, anonymous ARAP requesters,
    every test client allowed the deferred grant) with private callback targets allowed,
    its public URL its own loopback address; `adjust` may change the settings read."""
    folder.mkdir(parents=True, exist_ok=True)
    made: list[tuple[Settings, Starlette]] = []

    def make(url: str) -> Starlette:
        text = dtr_config_text(
            folder,
            deferral={"interval_seconds": 1, **(deferral or {})},
            allow_private_callbacks=True,
        )
        config = server_config(
            folder,
            clients=dtr_clients(),
            policies=store or POLICIES / "default",
            extra=f"\n[server]\npublic_url = {json.dumps(url)}\n" + text + extra,
        )
        settings = load_settings(config)
        if adjust is not None:
            settings = adjust(settings)
        app = create_app(settings)
        made.append((settings, app))
        return app

    async with served(make) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        settings, app = made[0]
        yield Bridge(url, settings, app, http)


@dataclass
class Listener:
    """Records the POSTs it receives and answers each with `status`."""

    status: int = 204
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self, url: str) -> Starlette:
        async def record(request: Request) -> Response:
            self.received.append((request.url.path, dict(request.headers), await request.body()))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for got, _, body in self.received if got == path]


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """The first truthy value of `check`, polled until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while not (value := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return value


def is_problem(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    """An ARAP problem document of `status` (and of ARAP's `kind`, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    if kind is not None:
        assert body["type"] == ARAP_ERROR + kind, body
    return body


def export(record: str, who: str = "alice", client_id: str = "demo-web") -> dict[str, Any]:
    """The evaluation of `client_id` exporting customer `record` for user `who` (the demo
    policies want a manager's approval, template `manager`)."""
    return {
        "subject": {"type": "user", "id": who},
        "action": {"name": "export"},
        "resource": {"type": "CustomerRecord", "id": record},
        "context": {"client_id": client_id},
    }
