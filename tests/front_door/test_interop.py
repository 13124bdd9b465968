"""A standard OAuth client library (Authlib's httpx OAuth2Client) runs the whole flow
against the running bridge — authorization URL with PKCE S256, the person's sign-in and
consent, the callback, the token request — once with a plain authorization request and once
pushed to /par first; a second JOSE library (PyJWT with PyJWKClient) verifies the token.
Neither library shares code with the bridge's joserfc."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

from tests.front_door.helpers import (
    CALLBACK,
    SECRETS,
    FrontDoorServer,
    b64url,
    consent,
    front_door_server,
    payment,
    query_of,
    read_details,
    sign_in,
)

with warnings.catch_warnings():
    # Authlib 1.9 prefers `httpx2` and warns when it falls back to httpx (see pyproject).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("interop")) as running:
        yield running


def person_allows(server: FrontDoorServer, authorization_url: str) -> str:
    """alice signs in and allows; the callback URL the browser is sent to."""
    with server.browser() as browser:
        started = browser.get(authorization_url)
        assert started.status_code == 303, started.text
        interaction = started.headers["location"]
        assert sign_in(browser, interaction, "alice").status_code == 303
        answer = consent(browser, interaction)
        assert answer.status_code == 303
        location: str = answer.headers["location"]
        return location


def verify_with_pyjwt(server: FrontDoorServer, token: str, audience: str) -> dict[str, Any]:
    jwks = pyjwt.PyJWKClient(server.url + "/jwks", cache_keys=False)
    signing_key = jwks.get_signing_key_from_jwt(token)
    assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims: dict[str, Any] = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=audience,
        issuer=server.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "client_id"]},
    )
    return claims


def test_authlib_runs_the_code_flow_with_pkce(server: FrontDoorServer) -> None:
    details = read_details("cust-0001")
    verifier = generate_token(64)
    with OAuth2Client(
        client_id="demo-web",
        token_endpoint_auth_method="none",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    ) as client:
        url, state = client.create_authorization_url(
            server.url + "/authorize",
            code_verifier=verifier,
            authorization_details=json.dumps(details),
        )
        assert "code_challenge_method=S256" in url and "code_challenge=" in url
        callback = person_allows(server, url)
        assert query_of(callback)["iss"] == server.issuer  # RFC 9207: who answered
        token = client.fetch_token(
            server.url + "/token",
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer" and token["authorization_details"] == details
        # Authlib refreshes too, with the rotated refresh token.
        refreshed = client.refresh_token(
            server.url + "/token", refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]

    claims = verify_with_pyjwt(server, token["access_token"], "https://crm.example.com")
    assert claims["sub"] == "alice" and claims["client_id"] == "demo-web"
    assert claims["authorization_details"] == details
    # The verification is real: a token claiming another user does not pass.
    header, _, signature = token["access_token"].split(".")
    forged = b64url(json.dumps({**claims, "sub": "mallory"}).encode())
    with pytest.raises(pyjwt.InvalidSignatureError):
        verify_with_pyjwt(server, f"{header}.{forged}.{signature}", "https://crm.example.com")


def test_authlib_pushes_the_request_to_par_first(server: FrontDoorServer) -> None:
    details = payment("20.00")
    verifier = generate_token(64)
    with OAuth2Client(
        client_id="web-app",
        client_secret=SECRETS["web-app"],
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    ) as client:
        # Authlib builds the request (PKCE included); its authenticated session pushes it.
        url, state = client.create_authorization_url(
            server.url + "/authorize",
            code_verifier=verifier,
            authorization_details=json.dumps(details),
        )
        pushed = client.post(
            server.url + "/par",
            data=dict(query_of(url)),
            auth=(client.client_id, client.client_secret),
        )
        assert pushed.status_code == 201, pushed.text
        front = (
            server.url
            + "/authorize?"
            + urlencode({"client_id": "web-app", "request_uri": pushed.json()["request_uri"]})
        )
        callback = person_allows(server, front)
        token = client.fetch_token(
            server.url + "/token",
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
    claims = verify_with_pyjwt(server, token["access_token"], "https://bank.example.com")
    assert claims["sub"] == "alice" and claims["client_id"] == "web-app"
    assert claims["authorization_details"] == details
