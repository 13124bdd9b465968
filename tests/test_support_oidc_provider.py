"""The OpenID Provider fixture: a real browser signs in, a standard client gets the tokens,
and the ID token verifies against the provider's JWKS with a JOSE library of our choosing."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.async_api import Page

from tests.support.browser import save_screenshot
from tests.support.oidc_provider import OidcAccount, OidcClient, OidcProvider, sign_in
from tests.support.web import LocalWebServer, WebResponse

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytest_plugins = ["tests.support.plugin"]

SIGNED_IN = WebResponse("<!doctype html><title>Back at the client</title><p>signed in</p>")


def verify_id_token(provider: OidcProvider, id_token: str, client_id: str, nonce: str) -> Any:
    """Check the ID token's signature against the provider's published keys, and its claims."""
    keys = KeySet.import_key_set(httpx.get(provider.jwks_uri, timeout=5).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    ).validate(token.claims)
    return token


async def test_code_flow_with_pkce_through_login_and_consent(
    oidc_provider: OidcProvider, page: Page, tmp_path: Path
) -> None:
    client = oidc_provider.client("bridge")
    alice = oidc_provider.account("alice")
    nonce = generate_token(24)
    verifier = generate_token(64)
    with LocalWebServer({"/callback": lambda _request: SIGNED_IN}) as web:
        # A native client: the provider accepts its loopback redirect URI on any port.
        redirect_uri = f"{web.url}/callback"
        async with AsyncOAuth2Client(
            client.client_id,
            client.client_secret,
            scope="openid email profile groups",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        ) as oauth:
            url, state = oauth.create_authorization_url(
                oidc_provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
            )
            await page.goto(url)
            # The development pages' <title> is always "Sign-in"; the heading names the step.
            assert await page.locator("h1").inner_text() == "Sign-in"
            await save_screenshot(page, tmp_path / "login.png")
            await page.locator('input[name="login"]').fill(alice.sub)
            await page.locator('input[name="password"]').fill(alice.password)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign-in").click()

            assert await page.locator("h1").inner_text() == "Authorize"
            await save_screenshot(page, tmp_path / "consent.png")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Continue").click()
            assert await page.title() == "Back at the client"

            callback = await web.wait_for_request_async("/callback")
            assert callback.param("state") == state
            assert callback.param("iss") == oidc_provider.issuer  # RFC 9207
            code = callback.param("code")
            assert code
            token = await oauth.fetch_token(
                oidc_provider.token_endpoint, code=code, code_verifier=verifier
            )

    id_token = verify_id_token(oidc_provider, token["id_token"], client.client_id, nonce)
    assert id_token.header["alg"] == "RS256"
    assert id_token.claims["sub"] == "alice"
    assert id_token.claims["email"] == "alice@example.test"
    assert id_token.claims["groups"] == ["approvers", "admins"]
    userinfo = httpx.get(
        oidc_provider.userinfo_endpoint,
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()
    assert userinfo["name"] == "Alice Approver"


async def test_public_client_registered_at_run_time_without_consent(
    oidc_provider: OidcProvider, page: Page
) -> None:
    with LocalWebServer({"/cb": lambda _request: SIGNED_IN}) as web:
        client = oidc_provider.register_client([f"{web.url}/cb"], public=True, skip_consent=True)
        assert client.is_public
        bob = oidc_provider.account("bob")
        verifier, nonce = generate_token(64), generate_token(24)
        async with AsyncOAuth2Client(
            client.client_id,
            redirect_uri=client.redirect_uris[0],
            scope="openid email",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as oauth:
            url, _state = oauth.create_authorization_url(
                oidc_provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
            )
            await page.goto(url)
            await sign_in(page, oidc_provider, bob)
            code = (await web.wait_for_request_async("/cb")).param("code")
            token = await oauth.fetch_token(
                oidc_provider.token_endpoint, code=code, code_verifier=verifier
            )
    claims = verify_id_token(oidc_provider, token["id_token"], client.client_id, nonce).claims
    assert claims["sub"] == "bob"
    assert claims["email"] == "bob@example.test"
    assert "groups" not in claims  # not asked for


async def test_wrong_password_and_unknown_login_are_refused(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge-public")
    verifier = generate_token(64)
    url = httpx.URL(
        oidc_provider.authorization_endpoint,
        params={
            "client_id": client.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "http://127.0.0.1:9/callback",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    await page.goto(str(url))
    await sign_in(page, oidc_provider, oidc_provider.account("alice"), password="wrong")
    assert await page.locator('input[name="login"]').count() == 1
    await sign_in(page, oidc_provider, OidcAccount(sub="mallory", password="x"))
    assert await page.locator('input[name="login"]').count() == 1
    assert 'sign-in refused for "alice"' in oidc_provider.log()
    assert 'sign-in refused for "mallory"' in oidc_provider.log()


async def test_pkce_is_required_even_for_confidential_clients(
    oidc_provider: OidcProvider,
) -> None:
    client: OidcClient = oidc_provider.client("bridge")
    async with httpx.AsyncClient(follow_redirects=False) as http:
        response = await http.get(
            oidc_provider.authorization_endpoint,
            params={
                "client_id": client.client_id,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": "http://127.0.0.1:9/callback",
            },
        )
    assert response.status_code in (302, 303)
    location = httpx.URL(response.headers["location"])
    assert location.params["error"] == "invalid_request"
    assert "requires PKCE" in location.params["error_description"]


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
async def test_discovery_and_keys_are_served(oidc_provider: OidcProvider, path: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(oidc_provider.issuer + path)
    assert response.status_code == 200
    if path == "/jwks":
        assert [key["alg"] for key in response.json()["keys"]] == ["RS256"]
    else:
        assert response.json()["code_challenge_methods_supported"] == ["S256"]
