"""Signing people in at a real, independent OpenID Provider (node-oidc-provider, started by
the test setup): the whole flow in a real browser, the answers a browser can bring back that
must be refused, a misconfigured or unreachable provider, and a key rotation.

The browser only plays the person at the provider's own pages; the callback lands on a small
loopback server, and its query is what the bridge's callback page would hand to `finish`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page

from bridge.upstream_signin import (
    CodeExchangeFailed,
    DiscoveryFailed,
    IdTokenInvalid,
    InvalidCallback,
    PendingSignIn,
    ProviderRefused,
    SignInExpired,
    StateMismatch,
    UpstreamSignIn,
    UpstreamSignInSettings,
)
from bridge.upstream_signin.authorization import code_challenge
from bridge.upstream_signin.id_token import Expected, verify_id_token
from bridge.upstream_signin.provider_http import ProviderHTTP
from bridge.upstream_signin.provider_keys import ProviderKeys
from tests.support.oidc_provider import (
    OidcAccount,
    OidcClient,
    OidcProvider,
    run_oidc_provider,
    sign_in,
)
from tests.support.web import LocalWebServer, WebResponse

pytest_plugins = ["tests.support.plugin"]

BACK = WebResponse("<!doctype html><title>Back at the bridge</title><p>back</p>")


def settings_for(
    provider: OidcProvider, client: OidcClient, **changes: Any
) -> UpstreamSignInSettings:
    values: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "token_endpoint_auth_method": client.token_endpoint_auth_method
        or ("none" if client.is_public else "client_secret_basic"),
        "scopes": ["openid", "email", "groups"],
        "subject_type": "employee",
        "claim_properties": {"email": "email", "groups": "groups"},
        # The provider listens on plain http at 127.0.0.1.
        "allow_private_network": True,
        "timeout_seconds": 5,
    }
    values.update(changes)
    return UpstreamSignInSettings.model_validate(values)


@contextlib.asynccontextmanager
async def signing_in(
    settings: UpstreamSignInSettings, **kwargs: Any
) -> AsyncIterator[UpstreamSignIn]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        yield UpstreamSignIn(settings, http, **kwargs)


@contextlib.contextmanager
def callback_server() -> Iterator[LocalWebServer]:
    with LocalWebServer({"/callback": lambda _request: BACK}) as web:
        yield web


async def at_provider(
    page: Page,
    provider: OidcProvider,
    url: str,
    web: LocalWebServer,
    account: OidcAccount | None = None,
) -> dict[str, str]:
    """Go to `url`, sign `account` in (when the provider asks) and consent; the callback's
    query as the bridge's callback page would read it."""
    await page.goto(url)
    if page.url.startswith(f"{provider.issuer}/interaction/"):
        if await page.locator('input[name="login"]').count():
            await sign_in(page, provider, account or provider.account("alice"))
        else:  # signed in at the provider already: only its consent page
            async with page.expect_navigation():
                await page.get_by_role("button", name="Continue").click()
    request = await web.wait_for_request_async("/callback")
    return {name: values[-1] for name, values in request.query.items()}


async def test_a_full_sign_in_names_the_person_with_the_mapped_properties(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")  # confidential, client_secret_basic
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
            person = await signin.finish(pending, query)

    sent = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(oidc_provider.authorization_endpoint + "?")
    assert sent["code_challenge"] == code_challenge(pending.code_verifier)
    assert sent["code_challenge_method"] == "S256"
    assert sent["state"] == pending.state and sent["nonce"] == pending.nonce
    assert sent["scope"] == "openid email groups"
    assert pending.code_verifier not in url
    assert query["iss"] == oidc_provider.issuer

    assert person.name == "alice"
    assert person.subject_type == "employee"
    assert person.issuer == oidc_provider.issuer
    # Only the mapped claims, under their property names.
    assert dict(person.properties) == {
        "email": "alice@example.test",
        "groups": ["approvers", "admins"],
    }


async def test_a_public_client_named_by_another_claim(
    oidc_provider: OidcProvider, page: Page
) -> None:
    with callback_server() as web:
        client = oidc_provider.register_client(
            [f"{web.url}/callback"], public=True, skip_consent=True
        )
        settings = settings_for(
            oidc_provider,
            client,
            name_claim="email",
            subject_type="user",
            claim_properties={"login": "sub", "team": "missing_claim"},
        )
        async with signing_in(settings) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web, oidc_provider.account("bob"))
            person = await signin.finish(pending, query)
    assert person.name == "bob@example.test"
    assert person.subject_type == "user"
    assert dict(person.properties) == {"login": "bob"}  # a claim the token lacks is left out


async def test_the_pending_sign_in_survives_a_session_store(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            kept = PendingSignIn.from_dict(pending.to_dict())
            query = await at_provider(page, oidc_provider, url, web)
            person = await signin.finish(kept, query)
    assert kept == pending
    assert person.name == "alice"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"state": "s"},
        {
            "issuer": "i",
            "state": "",
            "nonce": "n",
            "code_verifier": "v",
            "redirect_uri": "r",
            "created_at": 1.0,
        },
        {
            "issuer": "i",
            "state": "s",
            "nonce": "n",
            "code_verifier": "v",
            "redirect_uri": "r",
            "created_at": True,
        },
    ],
)
def test_a_damaged_pending_sign_in_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a pending sign-in"):
        PendingSignIn.from_dict(data)


async def test_an_answer_for_another_sign_in_is_refused_and_leaves_the_code_unused(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, started_here = await signin.begin(f"{web.url}/callback")
            _other_url, this_session = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
            with pytest.raises(StateMismatch) as refused:
                await signin.finish(this_session, query)
            with pytest.raises(StateMismatch):
                await signin.finish(started_here, {k: v for k, v in query.items() if k != "state"})
            # The code was not sent anywhere: the sign-in it belongs to still completes.
            person = await signin.finish(started_here, query)
    assert "browser session" in refused.value.safe_message
    assert person.name == "alice"


async def test_an_id_token_for_another_nonce_is_refused(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            _other_url, other = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
            # The state and verifier of this sign-in, the nonce of another one: the code is
            # exchanged, and the ID token it brings names a nonce this session did not send.
            crafted = dataclasses.replace(pending, nonce=other.nonce)
            with pytest.raises(IdTokenInvalid) as refused:
                await signin.finish(crafted, query)
    assert refused.value.reason == "nonce"
    assert query["code"] not in str(refused.value)


async def test_a_code_sent_again_is_refused_by_the_provider(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
            assert (await signin.finish(pending, query)).name == "alice"
            with pytest.raises(CodeExchangeFailed) as refused:
                await signin.finish(pending, query)
    assert "invalid_grant" in str(refused.value)
    assert query["code"] not in str(refused.value)
    assert client.client_secret is not None and client.client_secret not in str(refused.value)


async def test_a_wrong_client_secret_fails_the_code_exchange(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    settings = settings_for(oidc_provider, client, client_secret="not-the-secret")
    with callback_server() as web:
        async with signing_in(settings) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
            with pytest.raises(CodeExchangeFailed) as refused:
                await signin.finish(pending, query)
    assert "invalid_client" in str(refused.value)
    assert "not-the-secret" not in str(refused.value)


async def test_the_person_cancelling_at_the_provider_is_access_denied(
    oidc_provider: OidcProvider, page: Page
) -> None:
    client = oidc_provider.client("bridge")
    with callback_server() as web:
        async with signing_in(settings_for(oidc_provider, client)) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            await page.goto(url)
            assert page.url.startswith(f"{oidc_provider.issuer}/interaction/")
            await page.get_by_role("link", name="Cancel").click()
            request = await web.wait_for_request_async("/callback")
            query = {name: values[-1] for name, values in request.query.items()}
            with pytest.raises(ProviderRefused) as refused:
                await signin.finish(pending, query)
    assert query["error"] == "access_denied"
    assert refused.value.error == "access_denied"
    assert refused.value.declined
    # What the provider chose to say reaches the log, not the page.
    assert "aborted" in str(refused.value)
    assert "aborted" not in refused.value.safe_message


async def test_a_sign_in_that_took_too_long_is_refused(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.client("bridge")
    settings = settings_for(oidc_provider, client, pending_lifetime_seconds=60)
    now = [1_000_000.0]
    async with signing_in(settings, clock=lambda: now[0]) as signin:
        _url, pending = await signin.begin("http://127.0.0.1:9/callback")
        now[0] += 61
        with pytest.raises(SignInExpired):
            await signin.finish(pending, {"state": pending.state, "code": "any"})


async def test_an_answer_naming_another_issuer_is_refused(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.client("bridge")
    async with signing_in(settings_for(oidc_provider, client)) as signin:
        _url, pending = await signin.begin("http://127.0.0.1:9/callback")
        query = {"state": pending.state, "code": "c", "iss": "https://mix-up.example"}
        with pytest.raises(InvalidCallback, match="another issuer"):
            await signin.finish(pending, query)
        # The provider promises `iss` (RFC 9207): an answer without it is refused too.
        with pytest.raises(InvalidCallback, match="does not name it"):
            await signin.finish(pending, {"state": pending.state, "code": "c"})


async def test_a_wrongly_configured_issuer_is_refused_at_discovery(
    oidc_provider: OidcProvider,
) -> None:
    client = oidc_provider.client("bridge")
    # The same provider, but not the issuer its metadata (and its tokens) name.
    settings = settings_for(oidc_provider, client, issuer=oidc_provider.issuer + "/")
    async with signing_in(settings) as signin:
        with pytest.raises(DiscoveryFailed) as refused:
            await signin.begin("http://127.0.0.1:9/callback")
    assert f"names {oidc_provider.issuer!r}, not the configured issuer" in str(refused.value)
    assert "try again later" in refused.value.safe_message


async def test_plain_http_is_refused_unless_private_networks_are_allowed(
    oidc_provider: OidcProvider,
) -> None:
    client = oidc_provider.client("bridge")
    settings = settings_for(oidc_provider, client, allow_private_network=False)
    async with signing_in(settings) as signin:
        with pytest.raises(DiscoveryFailed, match="plain http is refused"):
            await signin.begin("http://127.0.0.1:9/callback")


async def test_the_provider_id_token_for_another_audience_or_issuer_is_refused(
    oidc_provider: OidcProvider, page: Page
) -> None:
    """A genuine ID token of the provider, fetched by the test itself, checked against a
    configuration that names another client or another issuer."""
    client = oidc_provider.client("bridge")
    settings = settings_for(oidc_provider, client)
    with callback_server() as web:
        async with signing_in(settings) as signin:
            url, pending = await signin.begin(f"{web.url}/callback")
            query = await at_provider(page, oidc_provider, url, web)
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(
                oidc_provider.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"],
                    "redirect_uri": pending.redirect_uri,
                    "code_verifier": pending.code_verifier,
                },
                auth=(client.client_id, client.client_secret or ""),
            )
            assert answer.status_code == 200, answer.text
            id_token = answer.json()["id_token"]
            fetcher = ProviderHTTP(
                http, allow_private=True, timeout_seconds=5, resolver=_loopback_resolver
            )
            keys = ProviderKeys(fetcher, min_refresh_seconds=0)
            expected = Expected(
                issuer=oidc_provider.issuer,
                client_id=client.client_id,
                nonce=pending.nonce,
                algorithms=frozenset({"RS256"}),
                leeway_seconds=60,
                max_age_seconds=600,
                now=time.time(),
            )

            async def refusal(**changes: Any) -> IdTokenInvalid:
                with pytest.raises(IdTokenInvalid) as refused:
                    await verify_id_token(
                        id_token,
                        keys=keys,
                        jwks_uri=oidc_provider.jwks_uri,
                        expected=dataclasses.replace(expected, **changes),
                    )
                return refused.value

            # As configured, the token passes: the refusals below are the changes' doing.
            claims = await verify_id_token(
                id_token, keys=keys, jwks_uri=oidc_provider.jwks_uri, expected=expected
            )
            assert claims["sub"] == "alice"
            audience = await refusal(client_id="another-client")
            issuer = await refusal(issuer="https://idp.example")
            algorithm = await refusal(algorithms=frozenset({"ES256"}))
    assert audience.reason == "audience"
    assert "not meant for the client another-client" in str(audience)
    assert issuer.reason == "issuer"
    assert algorithm.reason == "algorithm"


async def _loopback_resolver(host: str, port: int) -> list[str]:
    assert host == "127.0.0.1"
    return [host]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_provider_that_is_down_fails_discovery_at_once() -> None:
    port = _free_port()  # nothing listens there
    settings = UpstreamSignInSettings(
        issuer=f"http://127.0.0.1:{port}",
        client_id="bridge",
        token_endpoint_auth_method="none",
        allow_private_network=True,
    )
    async with signing_in(settings) as signin:
        with pytest.raises(DiscoveryFailed, match="cannot be reached") as refused:
            await signin.begin("http://127.0.0.1:9/callback")
    assert "try again later" in refused.value.safe_message


async def test_a_provider_that_never_answers_fails_discovery_after_the_timeout() -> None:
    # A listening socket nobody accepts from: the connection completes in the backlog and
    # then nothing is ever said.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = UpstreamSignInSettings(
            issuer=f"http://127.0.0.1:{port}",
            client_id="bridge",
            token_endpoint_auth_method="none",
            allow_private_network=True,
            timeout_seconds=0.5,
        )
        async with signing_in(settings) as signin:
            with pytest.raises(DiscoveryFailed, match=r"did not answer within 0\.5 s"):
                await signin.begin("http://127.0.0.1:9/callback")


async def test_a_rotated_provider_key_is_fetched_once_the_id_token_names_it(page: Page) -> None:
    """The provider restarts at the same issuer with a new signing key. A sign-in whose key
    set is kept reads the keys again when the ID token names the new key; one not allowed to
    read them again so soon refuses the token."""
    client = OidcClient(
        client_id="bridge-post",
        client_secret="a-secret-of-the-rotation-test",
        redirect_uris=("http://127.0.0.1/callback",),
        application_type="native",
        token_endpoint_auth_method="client_secret_post",
    )
    kids: list[set[str]] = []
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        with run_oidc_provider([client]) as first:
            refreshing = UpstreamSignIn(
                settings_for(first, client, jwks_min_refresh_seconds=0), http
            )
            holding = UpstreamSignIn(
                settings_for(first, client, jwks_min_refresh_seconds=3600), http
            )
            for signin in (refreshing, holding):
                with callback_server() as web:
                    url, pending = await signin.begin(f"{web.url}/callback")
                    query = await at_provider(page, first, url, web)
                    assert (await signin.finish(pending, query)).name == "alice"
            kids.append({key["kid"] for key in (await http.get(first.jwks_uri)).json()["keys"]})
            port = urlsplit(first.issuer).port
        assert port is not None
        await page.context.clear_cookies()
        with run_oidc_provider([client], port=port) as second:
            assert second.issuer == first.issuer
            kids.append({key["kid"] for key in (await http.get(second.jwks_uri)).json()["keys"]})
            with callback_server() as web:
                url, pending = await refreshing.begin(f"{web.url}/callback")
                query = await at_provider(page, second, url, web)
                person = await refreshing.finish(pending, query)
            with callback_server() as web:
                url, pending = await holding.begin(f"{web.url}/callback")
                query = await at_provider(page, second, url, web)
                with pytest.raises(IdTokenInvalid) as refused:
                    await holding.finish(pending, query)
    assert kids[0].isdisjoint(kids[1])  # a new key, not the old one again
    assert person.name == "alice"
    assert refused.value.reason == "unknown_key"


@pytest.mark.parametrize("callback", ["/callback", "callback", "http://127.0.0.1:9/cb#frag"])
async def test_a_callback_url_that_is_not_absolute_is_refused(
    oidc_provider: OidcProvider, callback: str
) -> None:
    client = oidc_provider.client("bridge")
    async with signing_in(settings_for(oidc_provider, client)) as signin:
        with pytest.raises(ValueError, match="absolute http"):
            await signin.begin(callback)
