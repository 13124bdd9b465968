"""The bridge behind a remote PDP, filing with the access request service its denials point
at, as ARAP and its companion profiles stand now; over real HTTP end to end: a client's
deferred token request, the remote PDP and its service (a small fake on loopback, scripted
per test), the service's callbacks to the bridge, the client's polls.

- AROP's task results carry no `result.mode`: such an approval completes the token as a
  `reevaluate` one does; an unknown mode does not.
- The Callback profile from the receiving side: every event (`approved`, `denied`,
  `expired`, `cancelled`, `failed`, `partial`) is a notification only, its claimed status
  and result never believed: the status endpoint is read, and only what it says counts.
- A service that is not the PDP's own (another origin) gets no denial without its
  `binding_token`.
- A denial that points at a request form (`request_schema_url`, the Catalog profile's
  `request_catalogs_url`) is filed only when the token request fills the form, with
  documents read from trusted origins only; otherwise the client gets a plain denial, or,
  for a form that cannot be trusted or read, nothing is filed at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.access_requests.times import rfc3339
from tests.arap_profile_fixtures import Bridge, bridge, eventually, served
from tests.dtr_fixtures import DEFERRED_GRANT, assert_deferred, auth_for
from tests.oauth_fixtures import rar, read_details

APPROVAL = "apr_remote_1"


@dataclass
class FakeRemote:
    """A remote PDP and its access request service, answering as scripted: every
    evaluation denied requestably unless it presents the approval `APPROVAL`."""

    url: str = ""
    ars: str | None = None  # the metadata's access_request_endpoint (default: its own)
    access: dict[str, Any] = field(default_factory=dict)  # more of each `access_request`
    binding_token: bool = True
    documents: dict[str, Any] = field(default_factory=dict)  # path → JSON served at it
    submissions: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def app(self, url: str) -> Starlette:
        self.url = url

        async def metadata(request: Request) -> Response:
            return JSONResponse(
                {
                    "policy_decision_point": url,
                    "access_evaluation_endpoint": url + "/access/v1/evaluation",
                    "access_request_endpoint": self.ars or url + "/access/v1/requests",
                }
            )

        async def evaluation(request: Request) -> Response:
            asked = await request.json()
            approval = (asked.get("context") or {}).get("approval") or {}
            if approval.get("id") == APPROVAL:
                return JSONResponse({"decision": True, "context": {"approval": approval}})
            access = {"template": "manager", "expires_at": rfc3339(time.time() + 600)}
            if self.binding_token:
                access["binding_token"] = "eyJhbGciOiJFUzI1NiJ9.eyJmYWtlIjp0cnVlfQ.c2ln"
            context = {
                "evaluation_id": f"eval_{len(self.submissions)}_{time.monotonic_ns()}",
                "reason": "approval_required",
                "access_request": {**access, **self.access},
            }
            return JSONResponse({"decision": False, "context": context})

        async def submit(request: Request) -> Response:
            body = await request.json()
            self.submissions.append(body)
            task_id = f"arq_{len(self.submissions)}"
            self.answers[task_id] = (200, {"task": self.task(task_id, "pending")})
            return JSONResponse({"task": self.task(task_id, "pending")}, status_code=202)

        async def status(request: Request) -> Response:
            task_id = request.path_params["task_id"]
            self.reads.append(task_id)
            code, body = self.answers[task_id]
            return JSONResponse(body, status_code=code)

        async def document(request: Request) -> Response:
            self.fetched.append(str(request.url))
            path = request.url.path
            if path not in self.documents:
                return JSONResponse({}, status_code=404)
            found = self.documents[path]
            return JSONResponse(found(request) if callable(found) else found)

        return Starlette(
            routes=[
                Route("/.well-known/authzen-configuration", metadata),
                Route("/access/v1/evaluation", evaluation, methods=["POST"]),
                Route("/access/v1/requests", submit, methods=["POST"]),
                Route("/access/v1/requests/{task_id}", status),
                Route("/docs/{path:path}", document),
            ]
        )

    def task(self, task_id: str, status: str, **members: Any) -> dict[str, Any]:
        base = self.ars.rsplit("/access/v1/requests", 1)[0] if self.ars else self.url
        endpoint = f"{base}/access/v1/requests/{task_id}"
        return {"id": task_id, "status": status, "status_endpoint": endpoint, **members}

    def settle(self, task_id: str, status: str, code: int = 200, **members: Any) -> None:
        """What the status endpoint answers from now on: `result` and `items` go where
        ARAP puts them."""
        result = members.pop("result", None)
        body: dict[str, Any] = {"task": self.task(task_id, status, **members)}
        if result is not None:
            body["result"] = result
        self.answers[task_id] = (code, body)


def approval(**members: Any) -> dict[str, Any]:
    return {"approval": {"id": APPROVAL, "approved_until": rfc3339(time.time() + 3600)}, **members}


@dataclass
class Setup:
    fake: FakeRemote
    bridge: Bridge
    other: FakeRemote  # a second service, on another origin than the PDP's


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    fake, other = FakeRemote(), FakeRemote()
    async with served(fake.app, lifespan="off") as url, served(other.app, lifespan="off"):
        extra = f'\n[pdp]\nkind = "remote"\n\n[pdp.remote]\nurl = "{url}"\nretries = 0\n'
        async with bridge(tmp_path, extra=extra) as running:
            yield Setup(fake, running, other)


async def ask(running: Bridge, *records: str) -> httpx.Response:
    """demo-agent's deferred token request to read `records` (several: a bundle)."""
    headers, extra = auth_for("demo-agent")
    form = {
        "grant_type": "client_credentials",
        "authorization_details": rar(read_details(*records)),
        "completion_mode": "deferred",
        **extra,
    }
    return await running.http.post("/token", data=form, headers=headers)


async def poll(running: Bridge, code: str, seconds: float = 20) -> httpx.Response:
    """Poll (every second, the interval) until the answer is no longer pending."""
    headers, extra = auth_for("demo-agent")
    deadline = time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, "the deferral was never settled"
        await asyncio.sleep(1.05)
        form = {"grant_type": DEFERRED_GRANT, "deferral_code": code, **extra}
        answer = await running.http.post("/token", data=form, headers=headers)
        if answer.status_code != 400 or answer.json().get("error") not in (
            "authorization_pending",
            "slow_down",
        ):
            return answer


async def notify(running: Bridge, submission: dict[str, Any], claimed: dict[str, Any]) -> None:
    """The service's callback for `submission`, claiming whatever `claimed` says."""
    body = {"state": submission["callback"]["state"], **claimed}
    answer = await running.http.post("/access/v1/callbacks", json=body)
    assert answer.status_code == 204, answer.text


def stored_status(running: Bridge, remote_id: str) -> str:
    database = running.settings.resolve(running.settings.storage.path)
    with sqlite3.connect(database) as db:
        found = db.execute(
            "SELECT status FROM remote_access_requests WHERE remote_id = ?", (remote_id,)
        ).fetchone()
    assert found is not None
    return str(found[0])


# -- AROP's results without a mode ---------------------------------------------------------


async def test_an_approval_without_a_mode_completes_the_token(setup: Setup) -> None:
    fake, running = setup.fake, setup.bridge
    deferred = assert_deferred(await ask(running, "cust-0001"))
    [submitted] = fake.submissions
    assert submitted["denial"]["binding_token"] and "mode" not in json.dumps(submitted)
    fake.settle("arq_1", "approved", result=approval())  # AROP: completion by issuance
    await notify(running, submitted, {"task": {"id": "arq_1", "status": "approved"}})
    issued = await poll(running, deferred["deferral_code"])
    assert issued.status_code == 200, issued.text
    assert issued.json()["access_token"]


async def test_an_unknown_mode_is_not_an_approval(setup: Setup) -> None:
    fake, running = setup.fake, setup.bridge
    deferred = assert_deferred(await ask(running, "cust-0001"))
    fake.settle("arq_1", "approved", result=approval(mode="https://example.com/other"))
    await notify(running, fake.submissions[0], {"task": {"id": "arq_1", "status": "approved"}})
    refused = await poll(running, deferred["deferral_code"])
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"


# -- the Callback profile, received ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "items"),
    [
        ("denied", 200, None),
        ("cancelled", 200, None),
        ("failed", 200, None),
        ("expired", 200, None),
        ("expired", 410, None),  # the handle itself has lapsed: task_expired
        ("partial", 200, [("approved", True), ("denied", False)]),
    ],
)
async def test_every_event_is_only_a_hint(
    setup: Setup, status: str, code: int, items: list[tuple[str, bool]] | None
) -> None:
    fake, running = setup.fake, setup.bridge
    records = ["cust-0001", "cust-0002"] if items else ["cust-0001"]
    deferred = assert_deferred(await ask(running, *records))
    submitted = fake.submissions[0]
    assert ("items" in submitted) == bool(items)
    # Claimed approved, with an approval: never believed, the status endpoint is read.
    lying = {"task": {"id": "arq_1", "status": "approved"}, "result": approval()}
    await notify(running, submitted, lying)
    assert fake.reads == ["arq_1"] and stored_status(running, "arq_1") == "pending"
    members: dict[str, Any] = {}
    if items:
        members["items"] = [
            {
                "resource": item["resource"],
                "action": item["action"],
                "status": item_status,
                **({"result": approval()} if with_result else {}),
            }
            for item, (item_status, with_result) in zip(submitted["items"], items, strict=True)
        ]
    fake.settle("arq_1", status, code, **members)
    await asyncio.sleep(1.1)  # past the gap within which a second callback only marks it due
    await notify(running, submitted, lying)

    async def read_again() -> bool:
        return stored_status(running, "arq_1") != "pending"

    await eventually(read_again)
    assert fake.reads == ["arq_1", "arq_1"]
    assert stored_status(running, "arq_1") == status
    refused = await poll(running, deferred["deferral_code"])
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"


async def test_an_approved_event_counts_only_as_the_status_endpoint_says(setup: Setup) -> None:
    fake, running = setup.fake, setup.bridge
    deferred = assert_deferred(await ask(running, "cust-0001", "cust-0002"))
    submitted = fake.submissions[0]
    fake.settle(
        "arq_1",
        "approved",
        items=[
            {
                "resource": i["resource"],
                "action": i["action"],
                "status": "approved",
                "result": approval(),
            }
            for i in submitted["items"]
        ],
    )
    # The notification carries no result at all: the read gives each item's.
    await notify(running, submitted, {"task": {"id": "arq_1", "status": "approved"}})
    issued = await poll(running, deferred["deferral_code"])
    assert issued.status_code == 200, issued.text


# -- binding_token for a service that is not the PDP's own --------------------------------


async def test_an_independent_service_gets_only_denials_with_a_binding_token(
    setup: Setup,
) -> None:
    fake, running, other = setup.fake, setup.bridge, setup.other
    fake.ars = other.url + "/access/v1/requests"
    fake.binding_token = False  # an evaluation_id alone: only the PDP's own state resolves it
    refused = await ask(running, "cust-0001")
    assert refused.status_code == 500 and refused.json()["error"] == "server_error"
    assert other.submissions == [] and fake.submissions == []
    fake.binding_token = True
    assert_deferred(await ask(running, "cust-0001"))
    assert len(other.submissions) == 1 and other.submissions[0]["denial"]["binding_token"]
    # The PDP's own service (its origin) may resolve the evaluation_id it issued.
    fake.binding_token = False
    fake.access = {"endpoint": fake.url + "/access/v1/requests"}
    assert_deferred(await ask(running, "cust-0002"))  # another request: filed anew
    [own] = fake.submissions
    assert "binding_token" not in own["denial"] and own["denial"]["evaluation_id"]


# -- request forms at a remote PDP --------------------------------------------------------

NEEDS_WHY = {
    "type": "object",
    "properties": {"business_justification": {"type": "string"}},
    "required": ["business_justification"],
}
NEEDS_CLIENT = {
    "type": "object",
    "properties": {"client_id": {"type": "string"}},
    "required": ["client_id"],
}


async def test_a_form_the_token_request_cannot_fill_is_a_plain_denial(setup: Setup) -> None:
    fake, running = setup.fake, setup.bridge
    fake.documents["/docs/why.json"] = NEEDS_WHY
    fake.access = {"request_schema_url": fake.url + "/docs/why.json"}
    answer = await ask(running, "cust-0001")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_authorization_details"
    assert "completion_mode=deferred" not in answer.json().get("error_description", "")
    assert fake.submissions == [] and fake.fetched == [fake.url + "/docs/why.json"]
    # A form its evaluation's context fills is filed.
    fake.documents["/docs/client.json"] = NEEDS_CLIENT
    fake.access = {"request_schema_url": fake.url + "/docs/client.json"}
    assert_deferred(await ask(running, "cust-0001"))
    assert len(fake.submissions) == 1


async def test_form_documents_come_from_trusted_origins_only(setup: Setup) -> None:
    fake, running, other = setup.fake, setup.bridge, setup.other
    other.documents["/docs/client.json"] = NEEDS_CLIENT
    fake.access = {"request_schema_url": other.url + "/docs/client.json"}
    refused = await ask(running, "cust-0001")
    assert refused.status_code == 500 and refused.json()["error"] == "server_error"
    assert other.fetched == [] and fake.submissions == []  # not read, nothing filed
    fake.access = {"request_catalogs_url": fake.url + "/docs/catalogs.json"}  # no schema
    assert (await ask(running, "cust-0001")).status_code == 500
    fake.documents["/docs/client.json"] = NEEDS_CLIENT
    fake.access = {"request_schema_url": fake.url + "/docs/missing.json"}
    assert (await ask(running, "cust-0001")).status_code == 500  # a form that cannot be read
    assert fake.submissions == []


async def test_a_catalog_value_is_filed_only_when_the_catalog_gives_it(setup: Setup) -> None:
    fake, running, other = setup.fake, setup.bridge, setup.other
    known: list[str] = ["demo-agent"]

    def catalog(request: Request) -> dict[str, Any]:
        asked = request.query_params.get("q", "")
        return {"items": [{"value": v, "label": v} for v in known if asked in v]}

    fake.documents["/docs/client.json"] = NEEDS_CLIENT
    fake.documents["/docs/catalogs.json"] = {
        "fields": {"/client_id": {"endpoint": fake.url + "/docs/clients"}}
    }
    fake.documents["/docs/clients"] = catalog
    fake.access = {
        "request_schema_url": fake.url + "/docs/client.json",
        "request_catalogs_url": fake.url + "/docs/catalogs.json",
    }
    assert_deferred(await ask(running, "cust-0001"))
    assert fake.fetched[-1] == fake.url + "/docs/clients?q=demo-agent&limit=100"
    known.clear()  # no longer in the catalog: not filed, a plain denial
    answer = await ask(running, "cust-0002")
    assert answer.json()["error"] == "invalid_authorization_details"
    assert len(fake.submissions) == 1
    # A catalog elsewhere is not asked.
    fake.documents["/docs/catalogs.json"] = {
        "fields": {"/client_id": {"endpoint": other.url + "/docs/clients"}}
    }
    assert (await ask(running, "cust-0003")).status_code == 500
    assert other.fetched == []
