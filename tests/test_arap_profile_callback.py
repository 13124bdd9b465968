"""The ARAP Callback profile, the bridge as the access request service, over real HTTP: the
`callback` member (`endpoint`, `state`, `events`), one signed notification for every
terminal status asked for (`approved`, `denied`, `expired`, `cancelled`, `partial`), none
for one not asked for, and event names that no task reaches refused. (`failed` is never
reached by the bridge's own tasks; the bridge as the receiver of every event, `failed`
included, is tests/test_remote_access_requests_profiles.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.arap_profile_fixtures import (
    REQUESTS,
    Bridge,
    Listener,
    bridge,
    eventually,
    export,
    is_problem,
    served,
)


@pytest.fixture(scope="module")
async def listener() -> AsyncIterator[tuple[str, Listener]]:
    heard = Listener()
    async with served(heard.app, lifespan="off") as url:
        yield url, heard


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridge]:
    async with bridge(tmp_path_factory.mktemp("callbacks")) as running:
        yield running


async def file(
    running: Bridge, records: list[str], callback: dict[str, Any], who: str = "alice"
) -> str:
    """An access request for `who` exporting `records` (a bundle for several)."""
    evaluations = [export(record, who) for record in records]
    items = [
        {"resource": e["resource"], "action": e["action"], "denial": await running.denial(e)}
        for e in evaluations
    ]
    body: dict[str, Any] = {
        "subject": evaluations[0]["subject"],
        "context": {"client_id": "demo-web"},
    }
    if len(items) == 1:
        body.update(items[0])
    else:
        body["items"] = items
    created = await running.http.post(REQUESTS, json={**body, "callback": callback})
    assert created.status_code == 202, created.text
    return str(created.json()["task"]["id"])


async def heard_once(heard: Listener, path: str) -> tuple[dict[str, str], bytes]:
    async def one() -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for got, headers, body in heard.received if got == path]

    [(headers, body)] = await eventually(one)
    return headers, body


async def assert_signed(
    running: Bridge, endpoint: str, headers: dict[str, str], raw: bytes
) -> None:
    """The notification's bearer token is the bridge's, for this endpoint and these bytes."""
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    keys = KeySet.import_key_set((await running.http.get("/jwks")).json())
    decoded = jwt.decode(token, keys)
    assert decoded.header["typ"] == "arap-callback+jwt"
    claims = decoded.claims
    assert claims["iss"] == running.settings.issuer and claims["aud"] == endpoint
    assert claims["task_id"] == json.loads(raw)["task"]["id"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
    assert claims["body_sha256"] == digest


async def test_an_approval_is_called_back_signed_with_its_result(
    running: Bridge, listener: tuple[str, Listener]
) -> None:
    url, heard = listener
    endpoint = url + "/approved"
    task_id = await file(
        running, ["cust-0001"], {"endpoint": endpoint, "state": "flow-1", "events": ["approved"]}
    )
    await running.decide(task_id, "manager-1", decision="approve")
    headers, raw = await heard_once(heard, "/approved")
    body = json.loads(raw)
    assert body["state"] == "flow-1"
    assert (body["task"]["id"], body["task"]["status"]) == (task_id, "approved")
    assert body["result"]["mode"] == "reevaluate" and body["result"]["approval"]["id"]
    # The notification says what the status endpoint says.
    assert (await running.task(task_id))["result"] == body["result"]
    await assert_signed(running, endpoint, headers, raw)


async def test_a_denial_and_a_cancellation_are_called_back(
    running: Bridge, listener: tuple[str, Listener]
) -> None:
    url, heard = listener
    denied = await file(running, ["cust-0002"], {"endpoint": url + "/denied"})
    await running.decide(denied, "manager-1", decision="deny")
    _, raw = await heard_once(heard, "/denied")
    assert json.loads(raw)["task"]["status"] == "denied" and "result" not in json.loads(raw)

    cancelled = await file(
        running, ["cust-0003"], {"endpoint": url + "/cancelled", "events": ["cancelled"]}
    )
    answer = await running.http.post(f"{REQUESTS}/{cancelled}/cancel")
    assert answer.status_code == 200, answer.text
    _, raw = await heard_once(heard, "/cancelled")
    assert json.loads(raw)["task"]["status"] == "cancelled"


async def test_a_partial_bundle_is_called_back_with_each_items_outcome(
    running: Bridge, listener: tuple[str, Listener]
) -> None:
    url, heard = listener
    task_id = await file(
        running, ["cust-0004", "cust-0005"], {"endpoint": url + "/partial", "events": ["partial"]}
    )
    await running.decide(task_id, "manager-1", decision="approve", items=[0])
    await running.decide(task_id, "manager-1", decision="deny", items=[1])
    _, raw = await heard_once(heard, "/partial")
    task = json.loads(raw)["task"]
    assert task["status"] == "partial"
    assert [i["status"] for i in task["items"]] == ["approved", "denied"]
    assert task["items"][0]["result"]["approval"]["id"] and "result" not in task["items"][1]
    assert "result" not in json.loads(raw)  # a bundle's results are its items'


async def test_an_event_not_asked_for_is_not_sent(
    running: Bridge, listener: tuple[str, Listener]
) -> None:
    url, heard = listener
    quiet = await file(running, ["cust-0006"], {"endpoint": url + "/quiet", "events": ["denied"]})
    await running.decide(quiet, "manager-1", decision="approve")
    told = await file(running, ["cust-0007"], {"endpoint": url + "/told", "events": ["approved"]})
    await running.decide(told, "manager-1", decision="approve")
    await heard_once(heard, "/told")
    # A callback row is written with the outcome, or never: once every one was delivered,
    # none went to the request that did not ask for its outcome.
    database = running.settings.resolve(running.settings.storage.path)

    async def all_delivered() -> bool:
        with sqlite3.connect(database) as db:
            statuses = db.execute("SELECT status FROM outbox WHERE kind = 'arap_callback'")
            return all(status == "done" for (status,) in statuses.fetchall())

    await eventually(all_delivered)
    assert not [call for call in heard.received if call[0] == "/quiet"]


async def test_event_names_are_the_profiles(running: Bridge) -> None:
    body = {**export("cust-0008"), "denial": await running.denial(export("cust-0008"))}
    for events in (["approved", "finished"], "approved", [1]):
        callback = {"endpoint": "https://pep.example/cb", "events": events}
        refused = await running.http.post(REQUESTS, json={**body, "callback": callback})
        detail = is_problem(refused, 400)["detail"]
        assert "callback.events" in detail
    every = ["approved", "denied", "expired", "cancelled", "failed", "partial"]
    callback = {"endpoint": "https://pep.example/cb", "events": every}
    assert (
        await running.http.post(REQUESTS, json={**body, "callback": callback})
    ).status_code == 202


async def test_an_expiry_is_called_back(tmp_path: Path, listener: tuple[str, Listener]) -> None:
    url, heard = listener

    def short_wait(settings: Any) -> Any:
        # Below the 60 s the file accepts: the product's code, only the number differs.
        access = settings.access_requests.model_copy(update={"request_lifetime_seconds": 1})
        return settings.model_copy(update={"access_requests": access})

    async with bridge(tmp_path, adjust=short_wait) as short:
        task_id = await file(short, ["cust-0009"], {"endpoint": url + "/expired"})

        async def expired() -> bool:
            return bool((await short.task(task_id))["task"]["status"] == "expired")

        await eventually(expired)
        _, raw = await heard_once(heard, "/expired")
        assert json.loads(raw)["task"]["status"] == "expired"
