"""Standard OAuth and JOSE libraries against the live server: Authlib's httpx OAuth2Client
obtains a token with client_credentials and `authorization_details`, and PyJWT (with its
PyJWKClient reading the bridge's JWKS) verifies it. Neither library shares code with the
bridge's own joserfc."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

from tests.oauth_fixtures import (
    ISSUER,
    OAuthServer,
    b64url,
    oauth_server,
    payment,
    read_details,
    secret_of,
)

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx,
    # which is what the bridge itself uses; the fallback is what is tested here.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("interop")) as running:
        yield running


def verify_with_pyjwt(server: OAuthServer, token: str, audience: str) -> dict[str, Any]:
    jwks = pyjwt.PyJWKClient(server.url + "/jwks", cache_keys=False)
    signing_key = jwks.get_signing_key_from_jwt(token)
    assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims: dict[str, Any] = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return claims


def test_authlib_fetches_and_pyjwt_verifies(server: OAuthServer) -> None:
    details = read_details("c-4815", "c-4816")
    with OAuth2Client(
        client_id="demo-agent",
        client_secret=secret_of("demo-agent"),
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        token = client.fetch_token(
            server.url + "/token",
            grant_type="client_credentials",
            authorization_details=json.dumps(details),
        )
    assert token["token_type"] == "Bearer"
    assert token["authorization_details"] == details
    assert token["expires_at"] > token["expires_in"]  # Authlib computed an absolute expiry

    claims = verify_with_pyjwt(server, token["access_token"], "https://crm.example.com")
    assert claims["authorization_details"] == details
    assert claims["client_id"] == claims["sub"] == "demo-agent"
    assert claims["exp"] - claims["iat"] == token["expires_in"]

    # The checks are real: another audience, or a changed token, does not pass.
    with pytest.raises(pyjwt.InvalidAudienceError):
        verify_with_pyjwt(server, token["access_token"], "https://other.example.com")
    header, _, signature = token["access_token"].split(".")
    widened = claims | {"authorization_details": read_details("c-4815", actions=("export",))}
    tampered = f"{header}.{b64url(json.dumps(widened).encode())}.{signature}"
    with pytest.raises(pyjwt.InvalidSignatureError):
        verify_with_pyjwt(server, tampered, "https://crm.example.com")


async def test_authlib_async_client_with_client_secret_post(server: OAuthServer) -> None:
    details = payment("250.00")
    async with AsyncOAuth2Client(
        client_id="post-client",
        client_secret=secret_of("post-client"),
        token_endpoint_auth_method="client_secret_post",
    ) as client:
        token = await client.fetch_token(
            server.url + "/token",
            grant_type="client_credentials",
            authorization_details=json.dumps(details),
        )
    assert token["authorization_details"] == details
    claims = verify_with_pyjwt(server, token["access_token"], "https://bank.example.com")
    assert claims["authorization_details"] == details
    assert claims["client_id"] == "post-client"


def test_authlib_surfaces_the_oauth_error(server: OAuthServer) -> None:
    with (
        OAuth2Client(
            client_id="demo-agent",
            client_secret=secret_of("demo-agent"),
            token_endpoint_auth_method="client_secret_basic",
        ) as client,
        pytest.raises(OAuthError) as refused,
    ):
        client.fetch_token(
            server.url + "/token",
            grant_type="client_credentials",
            authorization_details=json.dumps(read_details("c-1", actions=("export",))),
        )
    assert refused.value.error == "invalid_authorization_details"
