"""Races around deferred token requests, over HTTP against the real bridge (uvicorn in a
thread of the test process) on a real SQLite file. Requests are started together with
`asyncio.gather` on one `httpx.AsyncClient`, so the server works on them at once.

- 20 polls of one approved code: exactly one gets the token, the others `invalid_grant`
  (a resolved code is never throttled, so no `slow_down`).
- 20 polls of one pending code: the throttle bookkeeping loses no update (one
  `authorization_pending`, then `slow_down` up to `max_slow_downs`, then `invalid_request`).
- Two approvers deciding one access request at once: one outcome, one 200 and one 409
  problem, and the task and the deferral both end the way the winner decided.
- A revocation racing the poll of an approved code: either the token is issued (and the
  revocation changes nothing) or the code is cancelled and the poll says `access_denied`.

The demo policies let manager-1 approve exports of customer records; the copy used here
lets manager-2 approve them as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.demo_approvers import mint
from bridge.settings import Settings, load_settings
from tests.conftest import POLICIES, serve
from tests.oauth_fixtures import CLIENTS, CRM, basic_header, rar, server_config

DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
DEFERRAL_CODE_TYPE = "urn:ietf:params:oauth:token-type:deferral-code"
INVALID_TASK_STATE = "urn:openid:authzen:access-request:error:invalid_task_state"
POLLS = 20
INTERVAL = 5
MAX_SLOW_DOWNS = 10
SLOW_DOWN_SECONDS = 5

SECOND_MANAGER = """
// Tests only: a second manager, so that two approvers can decide one request at once.
@id("second-manager-approves-manager-requests")
permit (
  principal == user::"manager-2",
  action == Action::"approve",
  resource is AccessRequest
)
when { resource.template == "manager" };
"""


@dataclass
class Bridge:
    http: httpx.AsyncClient
    settings: Settings
    database: Path

    def approver(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, sub, 10)}"}

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.database, timeout=10)
        try:
            return db.execute(query, args).fetchall()
        finally:
            db.close()

    async def defer(self, record: str = "cust-0001") -> tuple[str, str]:
        """A deferred export of one customer record: (deferral code, access request id)."""
        details = [{"type": "customer_records", "actions": ["export"], "locations": [CRM + record]}]
        response = await self.http.post(
            "/token",
            data={
                "grant_type": "client_credentials",
                "authorization_details": rar(details),
                "completion_mode": "deferred",
                "client_notification_token": secrets.token_urlsafe(32),
            },
            headers=basic_header("demo-agent"),
        )
        assert response.status_code == 400, response.text
        code = str(response.json()["deferral_code"])
        inbox = await self.http.get("/access/v1/approvals", headers=self.approver("manager-1"))
        assert inbox.status_code == 200, inbox.text
        (task,) = inbox.json()["access_requests"]  # earlier rounds' requests are decided
        return code, str(task["id"])

    async def poll(self, code: str) -> httpx.Response:
        return await self.http.post(
            "/token",
            data={"grant_type": DEFERRED, "deferral_code": code},
            headers=basic_header("demo-agent"),
        )

    async def decide(self, task_id: str, approver: str, decision: str) -> httpx.Response:
        return await self.http.post(
            f"/access/v1/approvals/{task_id}",
            json={"decision": decision},
            headers=self.approver(approver),
        )

    async def approved(self, task_id: str) -> None:
        """Approve, and wait until the deferral waiting on the request is resolved."""
        response = await self.decide(task_id, "manager-1", "approve")
        assert response.status_code == 200, response.text
        await self.settled(task_id)

    async def settled(self, task_id: str) -> str:
        """The status of the deferral on `task_id` once it has left `pending`."""
        deadline = time.monotonic() + 10
        while True:
            ((status,),) = self.rows("SELECT status FROM deferrals WHERE task_id = ?", task_id)
            if status != "pending":
                return str(status)
            assert time.monotonic() < deadline, "the deferral was not resolved"
            await asyncio.sleep(0.02)

    def deferral(self, task_id: str) -> tuple[Any, ...]:
        (row,) = self.rows(
            "SELECT status, slow_down_count, required_gap, last_poll_at FROM deferrals "
            "WHERE task_id = ?",
            task_id,
        )
        return row


@contextlib.asynccontextmanager
async def bridge(folder: Path) -> AsyncIterator[Bridge]:
    policies = folder / "policies"
    shutil.copytree(POLICIES / "default", policies)
    with (policies / "policies.cedar").open("a", encoding="utf-8") as out:
        out.write(SECOND_MANAGER)
    client = {
        **CLIENTS["demo-agent"],
        "grant_types": ["client_credentials", DEFERRED],
        "refresh_tokens": False,
    }
    extra = f"""
[access_requests]
demo_approver_key_file = {json.dumps(str(folder / "approver-key.json"))}

[deferral]
interval_seconds = {INTERVAL}
slow_down_seconds = {SLOW_DOWN_SECONDS}
max_slow_downs = {MAX_SLOW_DOWNS}
"""
    config = server_config(folder, clients={"demo-agent": client}, policies=policies, extra=extra)
    settings = load_settings(config)
    with serve(settings) as server:
        limits = httpx.Limits(max_connections=POLLS + 5)
        async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as http:
            yield Bridge(http, settings, folder / "bridge.sqlite3")


def oauth_error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in response.json()
    return str(response.json()["error"])


async def test_twenty_polls_of_an_approved_code_issue_one_token(tmp_path: Path) -> None:
    async with bridge(tmp_path) as b:
        for round_ in range(3):
            code, task_id = await b.defer(f"cust-{round_:04d}")
            await b.approved(task_id)
            responses = await asyncio.gather(*(b.poll(code) for _ in range(POLLS)))
            tokens = [r for r in responses if r.status_code == 200]
            assert len(tokens) == 1, [r.text for r in responses]
            assert tokens[0].json()["access_token"]
            assert tokens[0].headers["cache-control"] == "no-store"
            errors = [oauth_error(r) for r in responses if r.status_code != 200]
            assert errors == ["invalid_grant"] * (POLLS - 1)
            assert b.deferral(task_id)[0] == "redeemed"
            assert oauth_error(await b.poll(code)) == "invalid_grant"


async def test_twenty_polls_of_a_pending_code_lose_no_throttle_update(tmp_path: Path) -> None:
    async with bridge(tmp_path) as b:
        code, task_id = await b.defer()
        responses = await asyncio.gather(*(b.poll(code) for _ in range(POLLS)))
        errors = sorted(oauth_error(r) for r in responses)
        # The first poll is never too fast; every later one comes within the interval.
        expected = (
            ["authorization_pending"]
            + ["invalid_request"] * (POLLS - 1 - MAX_SLOW_DOWNS)
            + ["slow_down"] * MAX_SLOW_DOWNS
        )
        assert errors == expected
        status, slow_downs, gap, last_poll_at = b.deferral(task_id)
        assert status == "pending"
        assert slow_downs == POLLS - 1
        assert gap == INTERVAL + MAX_SLOW_DOWNS * SLOW_DOWN_SECONDS
        assert last_poll_at is not None


@pytest.mark.parametrize(
    ("first", "second"),
    [("approve", "deny"), ("deny", "approve"), ("approve", "approve"), ("deny", "deny")],
)
async def test_two_approvers_at_once_leave_one_outcome(
    tmp_path: Path, first: str, second: str
) -> None:
    async with bridge(tmp_path) as b:
        for round_ in range(3):
            code, task_id = await b.defer(f"cust-{round_:04d}")
            one, two = await asyncio.gather(
                b.decide(task_id, "manager-1", first), b.decide(task_id, "manager-2", second)
            )
            assert sorted([one.status_code, two.status_code]) == [200, 409], (one.text, two.text)
            winner, loser = (one, two) if one.status_code == 200 else (two, one)
            decision = first if winner is one else second
            outcome = "approved" if decision == "approve" else "denied"
            assert winner.json()["access_request"]["status"] == outcome
            assert loser.headers["content-type"] == "application/problem+json"
            problem = loser.json()
            assert problem["type"] == INVALID_TASK_STATE and problem["status"] == 409, problem

            task = await b.http.get(
                f"/access/v1/approvals/{task_id}", headers=b.approver("manager-1")
            )
            assert task.json()["access_request"]["status"] == outcome
            assert b.rows("SELECT status FROM access_requests WHERE id = ?", task_id) == [
                (outcome,)
            ]
            granted = b.rows(
                "SELECT COUNT(*) FROM access_request_approvals WHERE task_id = ?", task_id
            )
            assert granted == [(1 if outcome == "approved" else 0,)]
            # One follow-up per decided request (a delivered row keeps no payload to match).
            follow_ups = b.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'task_terminal'")
            assert follow_ups == [(round_ + 1,)]

            # The deferral ends as the winner decided.
            settled = await b.settled(task_id)
            response = await b.poll(code)
            if outcome == "approved":
                assert settled == "resolved_ok"
                assert response.status_code == 200, response.text
            else:
                assert settled == "denied"
                assert oauth_error(response) == "access_denied"


async def test_a_revocation_racing_the_poll_of_an_approved_code(tmp_path: Path) -> None:
    async with bridge(tmp_path) as b:
        for round_ in range(8):
            code, task_id = await b.defer(f"cust-{round_:04d}")
            await b.approved(task_id)
            revoke = b.http.post(
                "/revoke",
                data={"token": code, "token_type_hint": DEFERRAL_CODE_TYPE},
                headers=basic_header("demo-agent"),
            )
            polled, revoked = await asyncio.gather(b.poll(code), revoke)
            assert revoked.status_code == 200, revoked.text
            status = b.deferral(task_id)[0]
            if polled.status_code == 200:
                assert status == "redeemed"  # revoking after redemption changes nothing
            else:
                # Cancelled before the token was issued: never a token, and the poll says
                # so (dtr.md §6: polls of a cancelled code answer `access_denied`).
                assert status == "cancelled"
                assert oauth_error(polled) == "access_denied", polled.text
            later = "invalid_grant" if status == "redeemed" else "access_denied"
            assert oauth_error(await b.poll(code)) == later
