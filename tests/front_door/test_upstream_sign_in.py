"""People sign in at the organisation's OpenID Provider, from the bridge's own sign-in pages.

The provider is a real, independent one (node-oidc-provider, started by the test setup); the
browser is Debian's Chromium. alice goes from a client's /authorize to the provider and back
to consent, and her token names her; cancelling at the provider sends the client
`access_denied`. Plain HTTP tests cover what a callback can bring back that must be refused:
no pending sign-in, another browser's, a used one, another state, a forged cookie.

`UPDATE_SCREENSHOTS=1` also writes the sign-in page to docs/images/sign-in-upstream.png.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Page

from bridge.front_door.sign_in_methods import sign_in_problems
from bridge.settings import ConfigError, load_settings
from tests.conftest import REPO
from tests.front_door.helpers import (
    CLIENTS,
    FrontDoorServer,
    authorization_params,
    claims_of,
    front_door_server,
    hidden,
    pkce_pair,
    redeem,
    start,
)
from tests.support.browser import save_screenshot
from tests.support.oidc_provider import (
    OidcAccount,
    OidcClient,
    OidcProvider,
    default_accounts,
    run_oidc_provider,
    sign_in,
)
from tests.support.web import LocalWebServer, WebRequest, WebResponse

pytest_plugins = ["tests.support.plugin"]

PROVIDER_NAME = "Example Corp"
# A native client: the provider accepts its loopback redirect URI on any port (RFC 8252
# §7.3), so it is registered before the bridge's port is known.
BRIDGE_AT_PROVIDER = OidcClient(
    client_id="authzen-bridge",
    client_secret=secrets.token_urlsafe(24),
    redirect_uris=("http://127.0.0.1/sign-in/callback",),
    application_type="native",
)


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with run_oidc_provider(clients=[BRIDGE_AT_PROVIDER], accounts=default_accounts()) as running:
        yield running


def upstream_toml(issuer: str, **changes: object) -> str:
    values: dict[str, object] = {
        "issuer": issuer,
        "client_id": BRIDGE_AT_PROVIDER.client_id,
        "client_secret": BRIDGE_AT_PROVIDER.client_secret,
        "display_name": PROVIDER_NAME,
        "scopes": ["openid", "email", "groups"],
        "claim_properties": {"email": "email", "groups": "groups"},
        # The provider listens on plain http at 127.0.0.1.
        "allow_private_network": True,
        "timeout_seconds": 5,
        **changes,
    }
    lines = ["[front_door.upstream_signin]"]
    for key, value in values.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines)


def _callback(request: WebRequest) -> WebResponse:
    return WebResponse("<!doctype html><title>Callback</title><p>Back at the application.</p>")


@pytest.fixture(scope="module")
def web() -> Iterator[LocalWebServer]:
    with LocalWebServer({"/callback": _callback}) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider, web: LocalWebServer
) -> Iterator[FrontDoorServer]:
    clients = {
        **CLIENTS,
        "demo-web": {**CLIENTS["demo-web"], "redirect_uris": [web.url + "/callback"]},
    }
    with front_door_server(
        tmp_path_factory.mktemp("upstream"),
        clients=clients,
        extra=upstream_toml(provider.issuer),
    ) as running:
        yield running


def alice(provider: OidcProvider) -> OidcAccount:
    return provider.account("alice")


def last_callback(web: LocalWebServer) -> WebRequest:
    return [r for r in web.requests if r.path == "/callback"][-1]


# -- in a browser -----------------------------------------------------------------------


async def test_alice_signs_in_at_the_provider_and_her_token_names_her(
    page: Page,
    server: FrontDoorServer,
    provider: OidcProvider,
    web: LocalWebServer,
    tmp_path: Path,
) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(challenge, redirect_uri=web.url + "/callback")
    await page.goto(server.url + "/authorize?" + urlencode(params))
    assert await page.title() == "Sign in · AuthZEN Bridge"
    # Local accounts stay on beside the provider.
    assert await page.get_by_label("User name").count() == 1
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    assert page.url.startswith(provider.issuer + "/interaction/")
    await page.go_back()
    await save_screenshot(page, tmp_path / "sign-in.png")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        await save_screenshot(page, REPO / "docs" / "images" / "sign-in-upstream.png")
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()

    await sign_in(page, provider, alice(provider))
    await page.wait_for_url(server.url + "/interaction/**")
    assert await page.title() == "Allow access? · AuthZEN Bridge"
    assert "Signed in as alice" in await page.locator("main").inner_text()
    assert "Read customer record cust-0001" in await page.locator("ul.asked").inner_text()
    # The pending sign-in served its purpose and is gone.
    cookies = {c["name"]: c["value"] for c in await page.context.cookies(server.url)}
    assert "bridge_sign_in" not in cookies
    # The session's person, as the PDP sees her: the configured claims as properties.
    body = cookies["bridge_session"].rpartition(".")[0]
    person = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["person"]
    assert person == {
        "name": "alice",
        "subject_type": "user",
        "properties": {"email": "alice@example.test", "groups": ["approvers", "admins"]},
        "method": "oidc",
    }

    async with page.expect_navigation(url=web.url + "/callback?**"):
        await page.get_by_role("button", name="Allow").click()
    callback = last_callback(web)
    assert callback.param("state") == params["state"]
    code = callback.param("code")
    assert code is not None
    token = redeem(server, code, verifier, redirect_uri=web.url + "/callback")
    assert token.status_code == 200, token.text
    claims = claims_of(token.json()["access_token"])
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "demo-web"


async def test_cancelling_at_the_provider_sends_the_client_access_denied(
    page: Page, server: FrontDoorServer, provider: OidcProvider, web: LocalWebServer
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, redirect_uri=web.url + "/callback")
    await page.goto(server.url + "/authorize?" + urlencode(params))
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    async with page.expect_navigation(url=web.url + "/callback?**"):
        await page.get_by_role("link", name="Cancel").click()
    callback = last_callback(web)
    assert callback.param("error") == "access_denied"
    assert callback.param("state") == params["state"]
    assert callback.param("iss") == server.issuer
    assert callback.param("code") is None


async def test_a_page_of_the_bridge_sends_people_to_sign_in_and_back(
    page: Page, server: FrontDoorServer, provider: OidcProvider
) -> None:
    await page.goto(server.url + "/sign-in?next=/signed-in%3Fshown%3D1")
    assert "Sign in to go on." in await page.locator("main").inner_text()
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    await sign_in(page, provider, provider.account("bob"))
    await page.wait_for_url(server.url + "/signed-in?shown=1")
    assert "You are signed in as bob." in await page.locator("main").inner_text()


# -- what a callback brings back that is refused ------------------------------------------


def to_provider(browser: httpx.Client, path: str = "/sign-in") -> dict[str, str]:
    """Press the provider's button on the sign-in page; the query parameters it sends."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    sent = browser.post(
        path + "/upstream" if path == "/sign-in" else path,
        data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/signed-in"},
    )
    assert sent.status_code == 303, sent.text
    return {k: v[0] for k, v in parse_qs(urlsplit(sent.headers["location"]).query).items()}


def test_the_way_to_the_provider_carries_pkce_state_and_nonce_but_no_secret(
    server: FrontDoorServer, provider: OidcProvider
) -> None:
    with server.browser() as browser:
        page = browser.get("/sign-in")
        sent = browser.post(
            "/sign-in/upstream", data={"csrf_token": hidden(page.text, "csrf_token")}
        )
        assert sent.status_code == 303
        location = sent.headers["location"]
        assert location.startswith(provider.authorization_endpoint + "?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["client_id"] == BRIDGE_AT_PROVIDER.client_id
        assert query["redirect_uri"] == server.url + "/sign-in/callback"
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["scope"] == "openid email groups"
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        assert "code_verifier" not in query
        cookie = next(
            value
            for name, value in sent.headers.multi_items()
            if name == "set-cookie" and value.startswith("bridge_sign_in=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        # Sealed: neither the state nor anything else readable travels in it.
        assert query["state"] not in cookie


def test_a_callback_without_a_pending_sign_in_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        browser.get("/sign-in")
        answer = browser.get("/sign-in/callback", params={"state": "x", "code": "y"})
    assert answer.status_code == 400
    assert "started in another browser" in answer.text
    assert "text/html" in answer.headers["content-type"]


def test_a_pending_sign_in_serves_once(server: FrontDoorServer, provider: OidcProvider) -> None:
    with server.browser() as browser:
        query = to_provider(browser)
        kept = dict(browser.cookies)
        # A code the provider never issued: its token endpoint refuses it.
        answer = {"state": query["state"], "code": "no", "iss": provider.issuer}
        first = browser.get("/sign-in/callback", params=answer)
        assert first.status_code == 502, first.text
        assert "Signing in did not work" in first.text
        # The same cookie and the same answer again: the state was used.
        browser.cookies.clear()
        for name, value in kept.items():
            browser.cookies.set(name, value)
        again = browser.get("/sign-in/callback", params=answer)
    assert again.status_code == 400
    assert "already finished" in again.text


def test_an_answer_with_another_state_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        to_provider(browser)
        answer = browser.get("/sign-in/callback", params={"state": "forged", "code": "c"})
    assert answer.status_code == 400
    assert "does not belong to this browser session" in answer.text


def test_another_browsers_pending_sign_in_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as victim, server.browser() as attacker:
        query = to_provider(victim)
        attacker.get("/sign-in")  # a session of its own
        attacker.cookies.set("bridge_sign_in", victim.cookies["bridge_sign_in"])
        answer = attacker.get("/sign-in/callback", params={"state": query["state"], "code": "c"})
    assert answer.status_code == 400
    assert "started in another browser" in answer.text


def test_a_forged_pending_cookie_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        query = to_provider(browser)
        sealed = browser.cookies["bridge_sign_in"]
        browser.cookies.set(
            "bridge_sign_in", sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
        )
        answer = browser.get("/sign-in/callback", params={"state": query["state"], "code": "c"})
    assert answer.status_code == 400


def test_a_repeated_parameter_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        query = to_provider(browser)
        answer = browser.get(
            "/sign-in/callback?"
            + urlencode([("state", query["state"]), ("code", "a"), ("code", "b")])
        )
    assert answer.status_code == 400


def test_the_button_needs_the_forms_csrf_token(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        browser.get("/sign-in")
        answer = browser.post("/sign-in/upstream", data={"csrf_token": "guess"})
    assert answer.status_code == 403
    assert "location" not in answer.headers


def test_an_interactions_button_needs_that_browsers_interaction(
    server: FrontDoorServer, web: LocalWebServer
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, redirect_uri=web.url + "/callback")
    with server.browser() as browser, server.browser() as other:
        interaction = start(browser, params).headers["location"]
        page = browser.get(interaction)
        assert f"Sign in with {PROVIDER_NAME}" in page.text
        other.get("/sign-in")
        answer = other.post(
            interaction + "/sign-in/upstream",
            data={"csrf_token": hidden(page.text, "csrf_token")},
        )
    assert answer.status_code == 400
    assert "another browser" in answer.text


# -- the sign-in page on its own ------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/signed-in", "/signed-in"),
        ("//evil.example/", "/signed-in"),
        ("https://evil.example/", "/signed-in"),
        ("/\\evil.example", "/signed-in"),
    ],
)
def test_after_signing_in_the_page_goes_to_a_local_path_only(
    server: FrontDoorServer, asked: str, landed: str
) -> None:
    with server.browser() as browser:
        page = browser.get("/sign-in", params={"next": asked})
        assert page.status_code == 200
        answer = browser.post(
            "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "next": hidden(page.text, "next"),
                "username": "alice",
                "password": "demo-alice",
            },
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == landed
        # Signed in now: the page sends the person straight on.
        again = browser.get("/sign-in", params={"next": "/signed-in"})
        assert again.status_code == 303 and again.headers["location"] == "/signed-in"


def test_a_wrong_password_on_the_page_gets_the_generic_error(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        page = browser.get("/sign-in")
        answer = browser.post(
            "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": "alice",
                "password": "not-hers",
            },
        )
    assert answer.status_code == 401
    assert "The user name or the password is not right." in answer.text


# -- configurations -------------------------------------------------------------------------


def test_without_local_accounts_only_the_provider_is_offered(
    tmp_path: Path, provider: OidcProvider
) -> None:
    extra = "[front_door]\nlocal_accounts = false\n" + upstream_toml(provider.issuer)
    with front_door_server(tmp_path, extra=extra) as server, server.browser() as browser:
        page = browser.get("/sign-in")
        assert f"Sign in with {PROVIDER_NAME}" in page.text
        assert 'name="password"' not in page.text
        answer = browser.post(
            "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": "alice",
                "password": "demo-alice",
            },
        )
    assert answer.status_code == 404
    assert "set-cookie" not in answer.headers


def test_a_provider_out_of_reach_gets_an_error_page(tmp_path: Path) -> None:
    # Nothing listens on port 9 of the loopback.
    away = upstream_toml("http://127.0.0.1:9")
    with front_door_server(tmp_path, extra=away) as server, server.browser() as browser:
        page = browser.get("/sign-in")
        assert page.status_code == 200
        answer = browser.post(
            "/sign-in/upstream", data={"csrf_token": hidden(page.text, "csrf_token")}
        )
    assert answer.status_code == 503
    assert "cannot be reached right now" in answer.text


def test_nobody_could_sign_in_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("[front_door]\nlocal_accounts = false\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert "nobody could sign in" in str(refused.value)


def test_an_unreadable_client_secret_file_is_a_problem(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        "[front_door.upstream_signin]\n"
        'issuer = "https://id.example.com"\nclient_id = "bridge"\n'
        'client_secret_file = "secrets/idp-client"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    problems = sign_in_problems(settings)
    assert len(problems) == 1
    # Found beside the configuration file, like every path in it.
    assert problems[0].file == str(tmp_path / "secrets" / "idp-client")
    assert "cannot read" in problems[0].message
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "idp-client").write_text("s3cret\n", encoding="utf-8")
    assert sign_in_problems(settings) == []
