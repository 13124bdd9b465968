"""The ARAP Bulk profile over real HTTP, the bridge as PDP and access request service: a
bundle whose items carry their own denials (a batch evaluation's), or one bundle denial
whose `binding_hash` covers every item in its order; per-item status and result, each
approved item re-evaluated alone with its own approval; the aggregate `partial`; per-item
`requested_access` before the bundle's; cancelling a bundle with nothing pending."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.access_requests.binding import bundle_binding_hash, relevant_members
from bridge.access_requests.times import parse_rfc3339, rfc3339
from tests.arap_profile_fixtures import REQUESTS, Bridge, bridge, export, is_problem

CONTEXT = {"client_id": "demo-web"}


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridge]:
    async with bridge(tmp_path_factory.mktemp("bulk")) as running:
        yield running


async def batch_denials(running: Bridge, *records: str, who: str = "alice") -> list[dict[str, Any]]:
    """One batch evaluation of the exports of `records`: each item's own denial."""
    answer = await running.http.post(
        "/access/v1/evaluations",
        json={
            "subject": {"type": "user", "id": who},
            "action": {"name": "export"},
            "context": CONTEXT,
            "evaluations": [{"resource": {"type": "CustomerRecord", "id": r}} for r in records],
        },
    )
    assert answer.status_code == 200, answer.text
    denials = []
    for decision in answer.json()["evaluations"]:
        context = decision["context"]
        access = context["access_request"]
        denials.append(
            {
                "evaluation_id": context["evaluation_id"],
                "expires_at": access["expires_at"],
                "binding_token": access["binding_token"],
            }
        )
    return denials


def items_of(*records: str) -> list[dict[str, Any]]:
    return [
        {"resource": {"type": "CustomerRecord", "id": r}, "action": {"name": "export"}}
        for r in records
    ]


async def bundle_denial(running: Bridge, items: list[dict[str, Any]], who: str) -> dict[str, Any]:
    """A bundle denial of `items` in their order, as a PDP binding one batch's denials in
    one `binding_token` would give it: signed with the bridge's own key for its store."""
    settings = running.settings
    members = relevant_members(settings.access_requests.binding_context_members)
    pairs = [(item["resource"], item["action"]) for item in items]
    digest = bundle_binding_hash({"type": "user", "id": who}, pairs, CONTEXT, members)
    now = int(time.time())
    evaluation_id = "eval_" + secrets.token_urlsafe(8)
    token = await running.app.state.access_requests.tokens.issue(
        pdp=settings.server.public_url.rstrip("/"),
        template="manager",
        evaluation_id=evaluation_id,
        binding_hash=digest,
        members=members,
        issued_at=now,
        expires_at=now + 600,
    )
    return {
        "evaluation_id": evaluation_id,
        "expires_at": rfc3339(now + 600),
        "binding_token": token,
    }


async def test_items_with_their_own_denials_end_one_by_one(running: Bridge) -> None:
    denials = await batch_denials(running, "cust-0001", "cust-0002")
    items = [
        {**item, "denial": d}
        for item, d in zip(items_of("cust-0001", "cust-0002"), denials, strict=True)
    ]
    body = {"subject": {"type": "user", "id": "alice"}, "context": CONTEXT, "items": items}
    created = await running.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    task = created.json()["task"]
    assert [i["status"] for i in task["items"]] == ["pending", "pending"]
    assert [i["resource"]["id"] for i in task["items"]] == ["cust-0001", "cust-0002"]
    assert task["progress"]["total_steps"] == 1  # aggregate progress; items say the rest

    await running.decide(task["id"], "manager-1", decision="approve", items=[0])
    halfway = await running.task(task["id"])
    assert halfway["task"]["status"] == "pending"
    assert [i["status"] for i in halfway["task"]["items"]] == ["approved", "pending"]
    await running.decide(task["id"], "manager-1", decision="deny", items=[1])
    done = await running.task(task["id"])
    assert done["task"]["status"] == "partial" and "result" not in done
    first, second = done["task"]["items"]
    assert (first["status"], second["status"]) == ("approved", "denied")
    assert first["result"]["mode"] == "reevaluate" and "result" not in second

    # Each approved item is decided again alone, with its own approval.
    approval = first["result"]["approval"]
    again = export("cust-0001")
    again["context"] = {**CONTEXT, "approval": approval}
    assert (await running.evaluate(again))["decision"] is True
    other = export("cust-0002")
    other["context"] = {**CONTEXT, "approval": approval}
    assert (await running.evaluate(other))["decision"] is False

    # Nothing pending: cancelling is a conflict, and changes nothing.
    refused = await running.http.post(f"{REQUESTS}/{task['id']}/cancel")
    is_problem(refused, 409, "invalid_task_state")
    assert (await running.task(task["id"]))["task"]["status"] == "partial"


async def test_a_bundle_denial_binds_the_items_in_their_order(running: Bridge) -> None:
    items = items_of("cust-0003", "cust-0004", "cust-0005")
    subject = {"type": "user", "id": "bob"}
    denial = await bundle_denial(running, items, "bob")
    body = {"subject": subject, "context": CONTEXT, "items": items, "denial": denial}
    for changed in (
        list(reversed(items)),  # the same items in another order
        items[:2],  # one left out
        [*items, *items_of("cust-0006")],  # one added
    ):
        refused = await running.http.post(REQUESTS, json={**body, "items": changed})
        is_problem(refused, 400, "invalid_denial_binding")
    created = await running.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    task_id = created.json()["task"]["id"]
    approved = await running.decide(task_id, "manager-1", decision="approve")
    assert approved["status"] == "approved"
    results = [i["result"]["approval"] for i in (await running.task(task_id))["task"]["items"]]
    # One approval per item, each good for its own evaluation only.
    for n, record in enumerate(("cust-0003", "cust-0004", "cust-0005")):
        again = export(record, "bob")
        again["context"] = {**CONTEXT, "approval": results[n]}
        assert (await running.evaluate(again))["decision"] is True
        elsewhere = export(("cust-0004", "cust-0005", "cust-0003")[n], "bob")
        elsewhere["context"] = {**CONTEXT, "approval": results[n]}
        assert (await running.evaluate(elsewhere))["decision"] is False


async def test_an_items_requested_access_comes_before_the_bundles(running: Bridge) -> None:
    now = time.time()
    own, shared = rfc3339(now + 900), rfc3339(now + 1800)
    denials = await batch_denials(running, "cust-0007", "cust-0008", who="carol")
    items = [
        {**item, "denial": d}
        for item, d in zip(items_of("cust-0007", "cust-0008"), denials, strict=True)
    ]
    items[0]["requested_access"] = {"requested_until": own}
    body = {
        "subject": {"type": "user", "id": "carol"},
        "context": CONTEXT,
        "items": items,
        "requested_access": {"requested_until": shared},
    }
    created = await running.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    task_id = created.json()["task"]["id"]
    await running.decide(task_id, "manager-1", decision="approve")
    first, second = (await running.task(task_id))["task"]["items"]
    assert parse_rfc3339(first["result"]["approval"]["approved_until"]) == parse_rfc3339(own)
    assert parse_rfc3339(second["result"]["approval"]["approved_until"]) == parse_rfc3339(shared)


async def test_a_bundle_needs_a_denial_for_every_item(running: Bridge) -> None:
    [denial] = await batch_denials(running, "cust-0009", who="dave")
    items = items_of("cust-0009", "cust-0010")
    items[0]["denial"] = denial
    body = {"subject": {"type": "user", "id": "dave"}, "context": CONTEXT, "items": items}
    is_problem(await running.http.post(REQUESTS, json=body), 400, "not_requestable")
    with_both = {**body, "resource": items[0]["resource"], "action": items[0]["action"]}
    is_problem(await running.http.post(REQUESTS, json=with_both), 400)
