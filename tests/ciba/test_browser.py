"""CIBA with the user in a real headless browser (Debian's Chromium, driven by Playwright):
an agent asks for alice at the backchannel authentication endpoint; alice signs in and
approves on her own page, which shows the binding message as the client sent it; where the
payment needs finance, finance-1 approves on the approval pages; the agent's poll returns
the token: `sub` alice, `act` the agent, `expires_in` within the approval.

`UPDATE_SCREENSHOTS=1` also writes her page to docs/images/ciba-request.png.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from tests.ciba.helpers import AGENT, Acknowledgement, CibaServer, ciba_server
from tests.conftest import REPO
from tests.dtr_fixtures import parse_rfc3339, payment_details, unique_amount
from tests.front_door.helpers import PASSWORDS
from tests.support.browser import save_screenshot

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CibaServer]:
    with ciba_server(tmp_path_factory.mktemp("ciba-browser")) as running:
        yield running


async def settled(server: CibaServer, ack: Acknowledgement) -> httpx.Response:
    return await asyncio.to_thread(server.poll_until_settled, ack)


async def sign_in(page: Page, server: CibaServer, who: str, path: str) -> None:
    """Open `path` signed out, sign in as `who` on the page it sends to, and be back."""
    await page.goto(server.url + path)
    assert await page.title() == "Sign in · AuthZEN Bridge"
    await page.get_by_label("User name").fill(who)
    await page.get_by_label("Password").fill(PASSWORDS[who])
    async with page.expect_navigation(url=server.url + path):
        await page.get_by_role("button", name="Sign in").click()
    assert await page.locator("nav strong").inner_text() == who


async def sign_out(page: Page) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()


async def open_her_request(page: Page, words: str) -> None:
    entry = page.locator("#requests li", has_text=words)
    assert await entry.count() == 1, await page.locator("main").inner_text()
    async with page.expect_navigation():
        await entry.get_by_role("link").click()
    assert await page.title() == "Act for you? · AuthZEN Bridge"


async def press(page: Page, button: str) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name=button, exact=True).click()


def shop() -> str:
    return "Shop " + secrets.token_hex(3).upper()


async def test_alice_approves_a_payment_that_needs_no_approver(
    page: Page, server: CibaServer
) -> None:
    creditor = shop()
    binding = f"<i>Basket</i> & {creditor}"
    ack = server.asked(
        "alice", payment_details("99.00", creditor=creditor), binding_message=binding
    )
    await sign_in(page, server, "alice", "/ciba/requests")
    await open_her_request(page, creditor)
    assert await page.locator("h1").inner_text() == f"{AGENT} asks to act for you"
    # The message as the client sent it, as text: no markup of the client's on her page.
    assert await page.locator("#binding-message").inner_text() == binding
    assert await page.locator("#binding-message i").count() == 0
    assert await page.locator("#items").inner_text() == f"Pay 99.00 EUR to {creditor}"
    assert await page.locator("#state").inner_text() == "Waiting for your answer."
    await press(page, "Approve")
    assert await page.locator("#done").inner_text() == "You approved."
    assert await page.locator("#decide").count() == 0

    token = await settled(server, ack)
    assert token.status_code == 200, token.text
    _, claims = server.dtr.oauth.verify(token.json()["access_token"])
    assert (claims["sub"], claims["act"]) == ("alice", {"sub": AGENT})


async def test_alice_and_finance_approve_a_large_payment(page: Page, server: CibaServer) -> None:
    amount, cents = unique_amount()
    creditor = shop()
    ack = server.asked(
        "alice", payment_details(amount, creditor=creditor), binding_message=f"Invoice {creditor}"
    )
    await sign_in(page, server, "alice", "/ciba/requests")
    await open_her_request(page, creditor)
    await press(page, "Approve")
    assert "The approvers that policy names are asked as well." in (
        await page.locator("#state").inner_text()
    )
    task_id = server.dtr.find_request("finance-1", cents)["id"]
    await asyncio.sleep(ack.interval)
    waiting = server.poll(ack.auth_req_id)
    assert waiting.json()["error"] == "authorization_pending", waiting.text
    await sign_out(page)

    await sign_in(page, server, "finance-1", "/approvals")
    entry = page.locator("#requests li", has_text=creditor)
    assert await entry.count() == 1, await page.locator("main").inner_text()
    async with page.expect_navigation():
        await entry.get_by_role("link").click()
    assert await page.locator("#subject").inner_text() == "user alice"
    assert await page.locator("#through").inner_text() == AGENT
    await page.get_by_label("Approve for").select_option("3600")
    await press(page, "Approve")
    assert await page.locator("#status").inner_text() == "approved"

    token = await settled(server, ack)
    assert token.status_code == 200, token.text
    body = token.json()
    _, claims = server.dtr.oauth.verify(body["access_token"])
    assert (claims["sub"], claims["act"]) == ("alice", {"sub": AGENT})
    [item] = server.dtr.view("finance-1", task_id)["items"]
    until = parse_rfc3339(item["result"]["approval"]["approved_until"])
    assert claims["exp"] <= until
    assert body["expires_in"] <= until - time.time() + 1


async def test_screenshot_of_her_page(page: Page, server: CibaServer, tmp_path: Path) -> None:
    creditor = "Book Shop"
    server.asked(
        "alice",
        payment_details("1250.00", creditor=creditor),
        binding_message="Basket 7F3K",
    )
    await sign_in(page, server, "alice", "/ciba/requests")
    await open_her_request(page, "Basket 7F3K")
    shot = tmp_path / "ciba-request.png"
    await save_screenshot(page, shot)
    assert shot.stat().st_size > 1000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        (REPO / "docs" / "images" / "ciba-request.png").write_bytes(shot.read_bytes())
