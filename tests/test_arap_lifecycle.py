"""The task state machine (ARAP §9, §10): approver decisions per item, bundle aggregation,
cancellation, expiry and retention, and the outbox rows an outcome queues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.access_requests.problems import (
    BadRequest,
    Forbidden,
    InvalidTaskState,
    TaskExpired,
)
from bridge.access_requests.tasks import aggregate
from bridge.access_requests.times import parse_rfc3339, rfc3339
from tests.test_arap_submission import PEP, bundle
from tests.test_arap_support import ALICE, BOB, DORA, MARIA, Harness, harness, report, secret_doc


async def pending(h: Harness, doc: str = "plan", **extra: object) -> str:
    return (await h.service.submit(await h.submission(secret_doc(doc), **extra), PEP, None)).id


def test_aggregation() -> None:
    assert aggregate(["pending", "approved"]) == "pending"
    assert aggregate(["approved", "approved"]) == "approved"
    assert aggregate(["approved", "denied"]) == "partial"
    assert aggregate(["cancelled"]) == "cancelled"


async def test_approval_of_a_single_request(tmp_path: Path) -> None:
    async with harness(tmp_path, default_approval_seconds=3600) as h:
        task_id = await pending(h)
        done = await h.service.decide(task_id, MARIA, "approve", justification="ok")
        body = done.to_json(h.ars.urls)
        assert body["task"]["status"] == "approved" and "links" not in body["task"]
        approval = body["result"]["approval"]
        assert body["result"]["mode"] == "reevaluate" and approval["id"].startswith("apr_")
        assert parse_rfc3339(approval["approved_until"]) == int(h.clock()) + 3600
        assert parse_rfc3339(approval["approved_at"]) == int(h.clock())
        # Audit stays in the record and out of what the requester reads.
        assert done.record.items[0]["decided_by"] == {
            "iss": "https://idp.test",
            "sub": "maria",
            "key": '["https://idp.test","user","maria"]',
        }
        assert "decided_by" not in json.dumps(body) and "maria" not in json.dumps(body)
        assert await h.outbox() == [("task_terminal", task_id.encode())]
        with pytest.raises(InvalidTaskState):
            await h.service.decide(task_id, MARIA, "deny")
        with pytest.raises(InvalidTaskState):
            await h.service.cancel(task_id, PEP)
        assert len(await h.outbox()) == 1


async def test_approved_until_rules(tmp_path: Path) -> None:
    async with harness(tmp_path, default_approval_seconds=3600, max_approval_seconds=7200) as h:
        now = h.clock()
        task_id = await pending(h, "a")
        for bad in (now + 7201, now - 1, now):
            with pytest.raises(BadRequest):
                await h.service.decide(task_id, MARIA, "approve", approved_until=bad)
        with pytest.raises(BadRequest):
            await h.service.decide(task_id, MARIA, "deny", approved_until=now + 60)
        done = await h.service.decide(task_id, MARIA, "approve", approved_until=now + 7200)
        assert parse_rfc3339(done.items[0].result["approval"]["approved_until"]) == now + 7200  # type: ignore[index]
        # A `requested_until` already past does not shorten the default.
        task_id = await pending(
            h, "b", requested_access={"requested_until": "2000-01-01T00:00:00Z"}
        )
        asked = await h.service.decide(task_id, MARIA, "approve")
        assert parse_rfc3339(asked.items[0].result["approval"]["approved_until"]) == now + 3600  # type: ignore[index]


async def test_requested_until_caps_the_default(tmp_path: Path) -> None:
    async with harness(tmp_path, default_approval_seconds=3600) as h:
        soon = h.clock() + 600
        task_id = await pending(h, requested_access={"requested_until": rfc3339(soon)})
        done = await h.service.decide(task_id, MARIA, "approve")
        assert parse_rfc3339(done.items[0].result["approval"]["approved_until"]) == int(soon)  # type: ignore[index]


async def test_who_may_decide_is_cedars_decision(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        task_id = await pending(h)
        with pytest.raises(Forbidden):
            await h.service.decide(task_id, BOB, "approve")  # a clerk approves nothing
        with pytest.raises(Forbidden):
            await h.service.decide(task_id, ALICE, "approve")  # a manager, but her own request
        for bad in ("maybe", ""):
            with pytest.raises(BadRequest):
                await h.service.decide(task_id, MARIA, bad)
        for items in ([], [5], [True], "0"):
            with pytest.raises(BadRequest):
                await h.service.decide(task_id, MARIA, "approve", items=items)  # type: ignore[arg-type]
        assert (await h.service.status(task_id, PEP)).status == "pending"
        assert (await h.service.decide(task_id, DORA, "deny")).status == "denied"


async def test_bundle_items_are_decided_one_by_one(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        task_id = (
            await h.service.submit(await bundle(h, secret_doc("plan"), report("q4")), PEP, None)
        ).id
        # Maria may approve the manager item, not the director item (nor both at once).
        with pytest.raises(Forbidden):
            await h.service.decide(task_id, MARIA, "approve")
        first = await h.service.decide(task_id, MARIA, "approve", items=[0])
        assert first.status == "pending"
        assert [i.status for i in first.items] == ["approved", "pending"]
        assert first.items[0].result is not None and first.items[1].result is None
        assert "result" not in first.to_json(h.ars.urls)  # bundles carry results per item
        with pytest.raises(InvalidTaskState):
            await h.service.decide(task_id, DORA, "deny", items=[0])
        assert await h.outbox() == []
        done = await h.service.decide(task_id, DORA, "deny")
        assert done.status == "partial"
        assert [i.status for i in done.items] == ["approved", "denied"]
        assert await h.outbox() == [("task_terminal", task_id.encode())]


async def test_cancellation(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        task_id = await pending(h)
        assert (await h.service.cancel(task_id, PEP)).status == "cancelled"
        with pytest.raises(InvalidTaskState):
            await h.service.cancel(task_id, PEP)
        task_id = (
            await h.service.submit(await bundle(h, secret_doc("x"), report("y")), PEP, None)
        ).id
        await h.service.decide(task_id, DORA, "approve", items=[1])
        done = await h.service.cancel(task_id, PEP)
        assert done.status == "partial"
        assert [i.status for i in done.items] == ["cancelled", "approved"]


async def test_expiry_and_retention(tmp_path: Path) -> None:
    async with harness(tmp_path, request_lifetime_seconds=600) as h:
        lazy = await pending(h, "lazy")
        swept = await pending(h, "swept")
        h.clock.advance(600)
        assert (await h.service.status(lazy, PEP)).status == "expired"
        with pytest.raises(InvalidTaskState):
            await h.service.decide(lazy, MARIA, "approve")
        assert await h.service.tasks_for(MARIA) == []
        kinds = [kind for kind, _ in await h.outbox()]
        assert kinds == ["task_terminal", "task_terminal"]
        assert (await h.service.status(swept, PEP)).status == "expired"
        # The outcome stays readable a day, then the handle is gone (410).
        h.clock.advance(86_400 - 1)
        assert (await h.service.status(lazy, PEP)).status == "expired"
        h.clock.advance(1)
        with pytest.raises(TaskExpired):
            await h.service.status(lazy, PEP)
        await h.service.sweep()


async def test_a_bundle_expires_into_partial(tmp_path: Path) -> None:
    async with harness(tmp_path, request_lifetime_seconds=600) as h:
        task_id = (
            await h.service.submit(await bundle(h, secret_doc("p"), report("r")), PEP, None)
        ).id
        await h.service.decide(task_id, MARIA, "approve", items=[0])
        h.clock.advance(601)
        await h.service.sweep()
        view = await h.service.status(task_id, PEP)
        assert (view.status, [i.status for i in view.items]) == ("partial", ["approved", "expired"])


async def test_the_approver_inbox(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        mine = await pending(h, "plan")  # alice's, template manager
        h.clock.advance(1)  # the inbox is in filing order
        bobs = (
            await h.service.submit(await h.submission(secret_doc("x", user="bob")), PEP, None)
        ).id
        h.clock.advance(1)
        reports = (await h.service.submit(await h.submission(report()), PEP, None)).id
        assert [t["id"] for t in await h.service.tasks_for(MARIA)] == [mine, bobs]
        assert [t["id"] for t in await h.service.tasks_for(ALICE)] == [bobs]  # not her own
        assert [t["id"] for t in await h.service.tasks_for(DORA)] == [mine, bobs, reports]
        assert await h.service.tasks_for(BOB) == []
        shown = (await h.service.tasks_for(MARIA))[0]
        assert shown["subject"] == {"type": "user", "id": "alice"}
        assert shown["items"][0]["template"] == "manager" and shown["actionable_items"] == [0]
        assert shown["requester"] == PEP
        await h.service.decide(mine, MARIA, "approve")
        assert [t["id"] for t in await h.service.tasks_for(MARIA)] == [bobs]
        with pytest.raises(Forbidden):
            await h.service.task_for(reports, MARIA)
        assert (await h.service.task_for(mine, MARIA))["status"] == "approved"
