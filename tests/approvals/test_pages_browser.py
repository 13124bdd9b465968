"""The approval pages in a real headless browser (Debian's Chromium, driven by Playwright),
end to end with a client that waits: demo-agent asks for a token for alice (token exchange,
`completion_mode=deferred`), the request waits for approvers, and what a person does on the
pages is what the client's poll answers: the token after an approval, `access_denied` after
a denial or a cancellation, and a token inactive at introspection once its approval is
revoked. The two-step template needs both people, each in their own sign-in.

`UPDATE_SCREENSHOTS=1` also writes the inbox and a request page to
docs/images/approvals-inbox.png and docs/images/approval-request.png.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.approvals.helpers import SENSITIVE_RECORD, file_export, pages_server, task_state
from tests.conftest import REPO
from tests.dtr_fixtures import (
    Deferral,
    DTRServer,
    export_details,
    payment_details,
    unique_record,
)
from tests.front_door.helpers import PASSWORDS
from tests.oauth_fixtures import basic_header, exchange_form, idp_token
from tests.support.browser import new_context, save_screenshot

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with pages_server(tmp_path_factory.mktemp("pages-browser")) as running:
        yield running


def deferred_for(server: DTRServer, who: str, details: list[dict[str, Any]]) -> Deferral:
    """demo-agent's deferred token exchange for `who` asking for `details`."""
    return server.defer(exchange_form(details, subject_token=idp_token(who)))


async def settled(server: DTRServer, deferral: Deferral) -> httpx.Response:
    """The client's poll once the deferral is settled (polled as a well-behaved client)."""
    return await asyncio.to_thread(server.poll_until_settled, deferral)


def introspect(server: DTRServer, token: str) -> dict[str, Any]:
    response = server.http.post(
        "/introspect", data={"token": token}, headers=basic_header("demo-agent")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(page: Page, server: DTRServer, who: str, path: str = "/approvals") -> None:
    """Open `path` signed out, sign in as `who` on the page it sends to, and be back."""
    await page.goto(server.oauth.url + path)
    assert await page.title() == "Sign in · AuthZEN Bridge"
    await page.get_by_label("User name").fill(who)
    await page.get_by_label("Password").fill(PASSWORDS[who])
    async with page.expect_navigation(url=server.oauth.url + path):
        await page.get_by_role("button", name="Sign in").click()
    assert await page.locator("nav strong").inner_text() == who


async def sign_out(page: Page) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    assert "signed out" in (await page.locator("main").inner_text()).lower()


async def open_request(page: Page, words: str) -> None:
    """In the inbox on screen, open the request whose entry says `words`."""
    entry = page.locator("#requests li", has_text=words)
    assert await entry.count() == 1, await page.locator("main").inner_text()
    async with page.expect_navigation():
        await entry.get_by_role("link").click()
    assert await page.title() == "Access request · AuthZEN Bridge"


async def press(page: Page, button: str) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name=button, exact=True).click()


async def test_alices_deferred_request_approved_by_the_manager_yields_her_token(
    page: Page, server: DTRServer
) -> None:
    record = unique_record()
    deferral = deferred_for(server, "alice", export_details(record))
    await sign_in(page, server, "manager-1")
    await open_request(page, record)
    assert await page.locator("#subject").inner_text() == "user alice"
    assert await page.locator("#through").inner_text() == "demo-agent"
    assert await page.locator("#status").inner_text() == "pending"
    history = await page.locator("#history").inner_text()
    assert "Asked by client:demo-agent" in history
    await page.get_by_label("Justification (optional)").fill("Quarterly audit")
    await press(page, "Approve")

    assert await page.locator("#done").inner_text() == "You approved."
    assert await page.locator("#status").inner_text() == "approved"
    assert "Approved by manager-1: “Quarterly audit”" in await page.locator("#history").inner_text()
    token = await settled(server, deferral)
    assert token.status_code == 200, token.text
    assert introspect(server, token.json()["access_token"])["sub"] == "alice"
    await page.goto(server.oauth.url + "/approvals")
    assert await page.locator("#requests li", has_text=record).count() == 0, "nothing to decide"


async def test_a_denial_on_the_page_makes_the_poll_answer_access_denied(
    page: Page, server: DTRServer
) -> None:
    record = unique_record()
    deferral = deferred_for(server, "alice", export_details(record))
    await sign_in(page, server, "manager-1")
    await open_request(page, record)
    await page.get_by_label("Justification (optional)").fill("not for this purpose")
    await press(page, "Deny")
    assert await page.locator("#done").inner_text() == "You denied."
    assert await page.locator("#status").inner_text() == "denied"
    answer = await settled(server, deferral)
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied", answer.text


async def test_a_revocation_on_the_page_makes_the_token_inactive(
    page: Page, server: DTRServer
) -> None:
    record = unique_record()
    deferral = deferred_for(server, "alice", export_details(record))
    await sign_in(page, server, "manager-1")
    await open_request(page, record)
    await press(page, "Approve")
    token = (await settled(server, deferral)).json()["access_token"]
    assert introspect(server, token)["active"] is True

    async with page.expect_navigation():
        await page.get_by_role("link", name="Granted by you").click()
    entry = page.locator("#granted li", has_text=record)
    await entry.get_by_label("Why (optional)").fill("the audit was called off")
    async with page.expect_navigation():
        await entry.get_by_role("button", name="Revoke").click()
    assert await page.locator("#done").inner_text() == "The approval is revoked."
    assert await page.locator("#granted li", has_text=record).count() == 0
    assert introspect(server, token) == {"active": False}


async def test_the_two_step_template_needs_the_manager_then_the_dpo(
    page: Page, server: DTRServer
) -> None:
    deferral = deferred_for(server, "alice", export_details(SENSITIVE_RECORD))
    await sign_in(page, server, "manager-1")
    await open_request(page, SENSITIVE_RECORD)
    assert "step 1 of 2: manager" in await page.locator("#items").inner_text()
    await press(page, "Approve")
    assert await page.locator("#status").inner_text() == "pending"
    assert "step 2 of 2: data-protection" in await page.locator("#items").inner_text()
    assert await page.locator("#decide").count() == 0, "one person takes one step"
    await asyncio.sleep(deferral.interval)  # a client waits its interval between polls
    waiting = server.poll(deferral.code)
    assert waiting.json()["error"] == "authorization_pending", waiting.text

    await sign_out(page)
    await sign_in(page, server, "dpo-1")
    await open_request(page, SENSITIVE_RECORD)
    history = await page.locator("#history").inner_text()
    assert "Step “manager” approved by manager-1" in history
    await press(page, "Approve")
    assert await page.locator("#status").inner_text() == "approved"
    token = await settled(server, deferral)
    assert token.status_code == 200, token.text


async def test_alice_cancels_her_own_request(page: Page, server: DTRServer) -> None:
    record = unique_record()
    deferral = deferred_for(server, "alice", export_details(record))
    await sign_in(page, server, "alice", "/my-requests")
    entry = page.locator("#mine li", has_text=record)
    assert "pending" in await entry.inner_text()
    async with page.expect_navigation():
        await entry.get_by_role("button", name="Cancel this request").click()
    assert await page.locator("#done").inner_text() == "The request is cancelled."
    entry = page.locator("#mine li", has_text=record)
    assert "cancelled" in await entry.inner_text()
    assert await entry.get_by_role("button").count() == 0
    answer = await settled(server, deferral)
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied", answer.text


async def test_screenshots_of_the_inbox_and_of_a_request(browser: Browser, tmp_path: Path) -> None:
    """A fresh bridge with a morning's requests: alice's two exports (one of a sensitive
    record, through demo-agent), bob's export and payment, carol's emergency export. The
    manager takes the first step of alice's sensitive export; the inbox as the manager sees
    it, and alice's request as the data-protection officer sees it, are the pictures."""
    with pages_server(tmp_path / "demo") as demo:
        alices = [*export_details(SENSITIVE_RECORD), *export_details("cust-0107")]
        deferred_for(demo, "alice", alices)
        deferred_for(
            demo, "bob", [*export_details("cust-0215"), *payment_details("5000.00", "Acme GmbH")]
        )
        carol = file_export(
            demo,
            "carol",
            ["cust-0311", "cust-0312"],
            emergency=True,
            justification="The customer is on the phone about a disputed invoice",
        )
        manager = await new_context(browser)
        dpo = await new_context(browser)
        try:
            page = await manager.new_page()
            await sign_in(page, demo, "manager-1")
            await open_request(page, "Export customer record cust-0042")
            await page.get_by_label("Export customer record cust-0107").uncheck()
            await page.get_by_label("Justification (optional)").fill(
                "Needed for the quarterly audit (ticket FIN-2291)"
            )
            await press(page, "Approve")
            assert "step 2 of 2: data-protection" in await page.locator("#items").inner_text()
            await page.goto(demo.oauth.url + "/approvals")
            listed = await page.locator("#requests li").all_inner_texts()
            assert [entry.split(" through ")[0] for entry in listed] == [
                "user carol",
                "user bob",
                "user alice",
            ]
            assert "Emergency" in listed[0] and "Pay 5,000.00 EUR to Acme GmbH" in listed[1]
            await _picture(page, tmp_path, "approvals-inbox.png")

            page = await dpo.new_page()
            await sign_in(page, demo, "dpo-1")
            await open_request(page, "Export customer record cust-0042")
            assert await page.locator("#through").inner_text() == "demo-agent"
            assert await page.get_by_label("Export customer record cust-0042").is_checked()
            assert await page.locator("#item-1").count() == 0, "the manager's item is not dpo-1's"
            assert (
                "Step “manager” approved by manager-1: “Needed for the quarterly audit"
                in await page.locator("#history").inner_text()
            )
            await _picture(page, tmp_path, "approval-request.png")
        finally:
            await manager.close()
            await dpo.close()
        assert task_state(demo, carol["id"])["task"]["status"] == "pending"


async def _picture(page: Page, tmp_path: Path, name: str) -> None:
    await save_screenshot(page, tmp_path / name)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        await save_screenshot(page, REPO / "docs" / "images" / name)
