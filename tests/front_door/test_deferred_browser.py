"""The deferred front door in a real headless browser (Debian's Chromium): alice starts an
authorization code flow for a payment finance must approve, driven by a standard client
library (Authlib: the authorization URL with PKCE S256), reads on the consent page that
the client will wait, allows; finance-1 approves on the approval pages; the client's poll
returns a token whose `sub` is alice. Once with the hint only (a code, then a Deferred Token
Response at /token) and once with direct deferral (a `deferral_code` in the authorization
response, the verifier on the first poll)."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.deprecate import AuthlibDeprecationWarning
from playwright.async_api import Browser, Page

from tests.front_door.helpers import (
    CLIENTS,
    PASSWORDS,
    FrontDoorServer,
    claims_of,
    front_door_server,
    payment,
)
from tests.support.browser import new_context
from tests.support.web import LocalWebServer, WebRequest, WebResponse

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client

pytest_plugins = ["tests.support.plugin"]

DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
SECRET = "waiting-web-secret-for-tests"
APPROVERS = """
[access_requests]
demo_approver_key_file = "var/approvers.key"
"""


def _callback(request: WebRequest) -> WebResponse:
    return WebResponse("<!doctype html><title>Callback</title><p>Back at the application.</p>")


@pytest.fixture(scope="module")
def web() -> Iterator[LocalWebServer]:
    with LocalWebServer({"/callback": _callback}) as running:
        yield running


def clients(web: LocalWebServer) -> dict[str, dict[str, Any]]:
    waiting = {
        "auth_method": "client_secret_basic",
        "secret": SECRET,
        "grant_types": ["authorization_code", DEFERRED],
        "authorization_details_types": ["payment_initiation"],
        "redirect_uris": [web.url + "/callback"],
    }
    return {**CLIENTS, "waiting-web": waiting}


@pytest.fixture(scope="module")
def hinted(
    tmp_path_factory: pytest.TempPathFactory, web: LocalWebServer
) -> Iterator[FrontDoorServer]:
    folder = tmp_path_factory.mktemp("deferred-browser")
    with front_door_server(folder, extra=APPROVERS, clients=clients(web)) as running:
        yield running


@pytest.fixture(scope="module")
def direct(
    tmp_path_factory: pytest.TempPathFactory, web: LocalWebServer
) -> Iterator[FrontDoorServer]:
    folder = tmp_path_factory.mktemp("direct-browser")
    extra = APPROVERS + "\n[front_door]\ndirect_deferral = true\n"
    with front_door_server(folder, extra=extra, clients=clients(web)) as running:
        yield running


def a_payment() -> tuple[list[dict[str, Any]], str]:
    """A payment finance must approve, of an amount no other test uses; and its words."""
    cents = 300_000 + int(time.time() * 1000) % 5_000_000
    amount = f"{cents // 100}.{cents % 100:02d}"
    return payment(amount), f"Pay {cents // 100:,}.{cents % 100:02d} EUR to Merchant A"


async def sign_in(page: Page, who: str) -> None:
    assert await page.title() == "Sign in · AuthZEN Bridge"
    await page.get_by_label("User name").fill(who)
    await page.get_by_label("Password").fill(PASSWORDS[who])
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()


async def alice_allows(page: Page, url: str, web: LocalWebServer) -> dict[str, str]:
    """alice opens the authorization URL, signs in, reads the consent page and allows; the
    parameters her browser brings back to the client."""
    await page.goto(url)
    await sign_in(page, "alice")
    assert await page.title() == "Allow access? · AuthZEN Bridge"
    waiting = await page.locator("#deferred").inner_text()
    assert "gets its token once they have approved" in waiting
    async with page.expect_navigation(url=web.url + "/callback**"):
        await page.get_by_role("button", name="Allow").click()
    callback = [r for r in web.requests if r.path == "/callback"][-1]
    return {name: values[-1] for name, values in callback.query.items()}


async def finance_approves(browser: Browser, server: FrontDoorServer, words: str) -> None:
    """finance-1, in a browser of their own, finds the request in the inbox and approves."""
    context = await new_context(browser)
    try:
        page = await context.new_page()
        await page.goto(server.url + "/approvals")
        await sign_in(page, "finance-1")
        entry = page.locator("#requests li", has_text=words)
        assert await entry.count() == 1, await page.locator("main").inner_text()
        async with page.expect_navigation():
            await entry.get_by_role("link").click()
        assert await page.locator("#subject").inner_text() == "user alice"
        assert await page.locator("#through").inner_text() == "waiting-web"
        async with page.expect_navigation():
            await page.get_by_role("button", name="Approve", exact=True).click()
        assert await page.locator("#status").inner_text() == "approved"
    finally:
        await context.close()


def poll(server: FrontDoorServer, code: str, verifier: str | None = None) -> httpx.Response:
    form = {"grant_type": DEFERRED, "deferral_code": code}
    if verifier is not None:
        form["code_verifier"] = verifier
    return httpx.post(server.url + "/token", data=form, auth=("waiting-web", SECRET), timeout=30)


async def settled(server: FrontDoorServer, code: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        await asyncio.sleep(5)  # the interval
        answer = await asyncio.to_thread(poll, server, code)
        if answer.status_code != 400 or answer.json()["error"] != "authorization_pending":
            return answer
        assert time.monotonic() < deadline, "never settled"


def authlib_client(web: LocalWebServer) -> OAuth2Client:
    return OAuth2Client(
        client_id="waiting-web",
        client_secret=SECRET,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=web.url + "/callback",
        code_challenge_method="S256",
    )


async def test_hint_only_alice_waits_for_finance_and_the_client_gets_her_token(
    page: Page, browser: Browser, hinted: FrontDoorServer, web: LocalWebServer
) -> None:
    details, words = a_payment()
    verifier = generate_token(64)
    with authlib_client(web) as client:
        url, state = client.create_authorization_url(
            hinted.url + "/authorize",
            code_verifier=verifier,
            authorization_details=json.dumps(details),
            completion_mode="deferred",
        )
        answer = await alice_allows(page, url, web)
        assert answer["state"] == state and "code" in answer
        # The token request repeats the hint, and is deferred: finance must approve.
        deferred = client.post(
            hinted.url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "code_verifier": verifier,
                "redirect_uri": web.url + "/callback",
                "completion_mode": "deferred",
            },
            auth=("waiting-web", SECRET),
        )
    assert deferred.status_code == 400 and deferred.json()["error"] == "authorization_pending"
    code = deferred.json()["deferral_code"]
    await finance_approves(browser, hinted, words)
    issued = await settled(hinted, code)
    assert issued.status_code == 200, issued.text
    claims = claims_of(issued.json()["access_token"])
    assert claims["sub"] == "alice" and claims["client_id"] == "waiting-web"
    assert claims["authorization_details"] == details


async def test_direct_deferral_alice_waits_for_finance_and_the_client_gets_her_token(
    page: Page, browser: Browser, direct: FrontDoorServer, web: LocalWebServer
) -> None:
    details, words = a_payment()
    verifier = generate_token(64)
    with authlib_client(web) as client:
        url, state = client.create_authorization_url(
            direct.url + "/authorize",
            code_verifier=verifier,
            authorization_details=json.dumps(details),
            completion_mode="deferred",
        )
    answer = await alice_allows(page, url, web)
    assert set(answer) == {"deferral_code", "state", "expires_in", "interval", "iss"}
    assert answer["state"] == state and answer["iss"] == direct.issuer
    code = answer["deferral_code"]
    first = await asyncio.to_thread(poll, direct, code, verifier)
    assert first.json()["error"] == "authorization_pending", first.text
    await finance_approves(browser, direct, words)
    issued = await settled(direct, code)
    assert issued.status_code == 200, issued.text
    assert claims_of(issued.json()["access_token"])["sub"] == "alice"
