"""In a real headless browser (Debian's Chromium, driven by Playwright): alice signs in,
reads the consent page, allows, and the client's callback receives a code that yields her
token; declining sends access_denied. The pages work without JavaScript.

`UPDATE_SCREENSHOTS=1` also writes the consent page to docs/images/consent.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import REPO
from tests.front_door.helpers import (
    CLIENTS,
    FrontDoorServer,
    authorization_params,
    claims_of,
    front_door_server,
    payment,
    pkce_pair,
    read_details,
    redeem,
)
from tests.support.browser import new_context, save_screenshot
from tests.support.web import LocalWebServer, WebRequest, WebResponse

pytest_plugins = ["tests.support.plugin"]


def _callback(request: WebRequest) -> WebResponse:
    return WebResponse("<!doctype html><title>Callback</title><p>Back at the application.</p>")


@pytest.fixture(scope="module")
def web() -> Iterator[LocalWebServer]:
    with LocalWebServer({"/callback": _callback}) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, web: LocalWebServer
) -> Iterator[FrontDoorServer]:
    clients = {
        **CLIENTS,
        "demo-web": {**CLIENTS["demo-web"], "redirect_uris": [web.url + "/callback"]},
    }
    with front_door_server(tmp_path_factory.mktemp("browser"), clients=clients) as running:
        yield running


def last_callback(web: LocalWebServer) -> WebRequest:
    """The callback the browser has just been sent to (the navigation has completed)."""
    return [r for r in web.requests if r.path == "/callback"][-1]


def start_url(server: FrontDoorServer, web: LocalWebServer, challenge: str, **extra: str) -> str:
    details = [*read_details("cust-0001", actions=("read", "export")), *payment("5000.00")]
    params = authorization_params(
        challenge, redirect_uri=web.url + "/callback", details=details, **extra
    )
    return server.url + "/authorize?" + urlencode(params)


async def sign_in_as_alice(page: Page) -> None:
    assert await page.title() == "Sign in · AuthZEN Bridge"
    await page.get_by_label("User name").fill("alice")
    await page.get_by_label("Password").fill("demo-alice")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()


async def test_alice_signs_in_reads_consent_and_allows(
    page: Page, server: FrontDoorServer, web: LocalWebServer, tmp_path: Path
) -> None:
    verifier, challenge = pkce_pair()
    await page.goto(start_url(server, web, challenge))
    await sign_in_as_alice(page)

    assert await page.title() == "Allow access? · AuthZEN Bridge"
    listed = [text.strip() for text in await page.locator("ul.asked li").all_inner_texts()]
    assert listed == [
        "Read customer record cust-0001\nAllowed by the policy.",
        "Export customer record cust-0001\nNeeds an approval first, from: manager.",
        "Pay 5,000.00 EUR to Merchant A\nNeeds an approval first, from: finance.",
    ]
    await save_screenshot(page, tmp_path / "consent.png")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        await save_screenshot(page, REPO / "docs" / "images" / "consent.png")

    async with page.expect_navigation(url=web.url + "/callback?**"):
        await page.get_by_role("button", name="Allow").click()
    callback = last_callback(web)
    code = callback.param("code")
    assert code is not None and callback.param("iss") == server.issuer
    # The code yields alice's token; the PDP decides again, so only what it allows now
    # (the export and the large payment wait for approvals: the whole request is refused).
    refused = redeem(server, code, verifier, redirect_uri=web.url + "/callback")
    assert refused.json()["error"] == "invalid_authorization_details"


async def test_a_code_for_what_the_policy_allows_yields_her_token(
    browser: Browser, server: FrontDoorServer, web: LocalWebServer
) -> None:
    context = await new_context(browser)
    try:
        page = await context.new_page()
        verifier, challenge = pkce_pair()
        params = authorization_params(challenge, redirect_uri=web.url + "/callback")
        await page.goto(server.url + "/authorize?" + urlencode(params))
        await sign_in_as_alice(page)
        assert "Read customer record cust-0001" in await page.locator("ul.asked").inner_text()
        async with page.expect_navigation(url=web.url + "/callback?**"):
            await page.get_by_role("button", name="Allow").click()
        code = (last_callback(web)).param("code")
        assert code is not None
        token = redeem(server, code, verifier, redirect_uri=web.url + "/callback")
        assert token.status_code == 200, token.text
        assert claims_of(token.json()["access_token"])["sub"] == "alice"
    finally:
        await context.close()


async def test_declining_sends_access_denied(
    browser: Browser, server: FrontDoorServer, web: LocalWebServer
) -> None:
    # Without JavaScript: the pages are plain forms.
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        _, challenge = pkce_pair()
        await page.goto(start_url(server, web, challenge))
        await sign_in_as_alice(page)
        async with page.expect_navigation(url=web.url + "/callback?**"):
            await page.get_by_role("button", name="Decline").click()
        callback = last_callback(web)
        assert callback.param("error") == "access_denied"
        assert callback.param("code") is None
    finally:
        await context.close()
