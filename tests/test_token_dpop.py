"""DPoP-bound and bearer tokens from the live token endpoint (RFC 9449).

A proof binds the token to the proof's key: `token_type` `DPoP` and `cnf.jkt` = the key's
RFC 7638 thumbprint (computed here by the RFC's recipe, not by the bridge's code). Without a
proof the token is a bearer token. A public client's refresh token is bound to its key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from joserfc import jwt

from tests.oauth_fixtures import (
    TOKEN_URL,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    exchange_form,
    oauth_server,
    payment,
    rar,
    read_details,
)

CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "authorization_details": rar(payment())}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("dpop")) as running:
        yield running


def test_thumbprint_recipe_agrees_with_joserfc() -> None:
    """The expected `cnf.jkt` values below come from the RFC 7638 recipe in the fixtures;
    it must agree with a JOSE library's own thumbprint."""
    key = DPoPKey()
    assert key.jkt == key.key.thumbprint()
    assert len(key.jkt) == 43  # base64url of a SHA-256 digest, unpadded


def test_public_client_gets_a_dpop_bound_token(server: OAuthServer) -> None:
    key = DPoPKey()
    body = server.issued(exchange_form(read_details("c-1")), client="demo-public", dpop=key.proof())
    assert body["token_type"] == "DPoP"
    header, claims = server.verify(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["cnf"] == {"jkt": key.jkt}


def test_confidential_client_with_a_proof_gets_a_dpop_bound_token(server: OAuthServer) -> None:
    key = DPoPKey()
    body = server.issued(CLIENT_CREDENTIALS, dpop=key.proof())
    assert body["token_type"] == "DPoP"
    assert server.verify(body["access_token"])[1]["cnf"] == {"jkt": key.jkt}


def test_without_a_proof_the_token_is_a_bearer_token(server: OAuthServer) -> None:
    body = server.issued(CLIENT_CREDENTIALS)
    assert body["token_type"] == "Bearer"
    assert "cnf" not in server.verify(body["access_token"])[1]


def test_two_keys_two_bindings(server: OAuthServer) -> None:
    first, second = DPoPKey(), DPoPKey()
    tokens = [server.issued(CLIENT_CREDENTIALS, dpop=k.proof()) for k in (first, second)]
    jkts = {server.verify(t["access_token"])[1]["cnf"]["jkt"] for t in tokens}
    assert jkts == {first.jkt, second.jkt}


def test_htu_is_compared_after_normalisation(server: OAuthServer) -> None:
    key = DPoPKey()
    body = server.issued(CLIENT_CREDENTIALS, dpop=key.proof(htu="HTTPS://Bridge.Test:443/token"))
    assert body["token_type"] == "DPoP"


def test_htu_query_is_ignored(server: OAuthServer) -> None:
    body = server.issued(CLIENT_CREDENTIALS, dpop=DPoPKey().proof(htu=TOKEN_URL + "?x=1"))
    assert body["token_type"] == "DPoP"


def test_stale_proof_is_refused(server: OAuthServer) -> None:
    stale = DPoPKey().proof(iat=int(time.time()) - 3600)
    assert_oauth_error(server.token(CLIENT_CREDENTIALS, dpop=stale), "invalid_dpop_proof")


def test_proof_from_the_future_is_refused(server: OAuthServer) -> None:
    early = DPoPKey().proof(iat=int(time.time()) + 3600)
    assert_oauth_error(server.token(CLIENT_CREDENTIALS, dpop=early), "invalid_dpop_proof")


def test_proof_with_a_private_key_in_the_header_is_refused(server: OAuthServer) -> None:
    key = DPoPKey()
    claims = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.key.as_dict(private=True)}
    proof = jwt.encode(header, claims, key.key)
    assert_oauth_error(server.token(CLIENT_CREDENTIALS, dpop=proof), "invalid_dpop_proof")


def test_public_refresh_token_is_bound_to_the_key(server: OAuthServer) -> None:
    key = DPoPKey()
    body = server.issued(exchange_form(read_details("c-1")), client="demo-public", dpop=key.proof())
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}

    no_proof = server.token(form, client="demo-public")
    assert_oauth_error(no_proof, "invalid_dpop_proof")
    other_key = server.token(form, client="demo-public", dpop=DPoPKey().proof())
    assert_oauth_error(other_key, "invalid_dpop_proof")

    refreshed = server.issued(form, client="demo-public", dpop=key.proof())
    assert refreshed["token_type"] == "DPoP"
    assert server.verify(refreshed["access_token"])[1]["cnf"] == {"jkt": key.jkt}
    # The rotated token stays bound to the same key.
    next_form = {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}
    wrong = server.token(next_form, client="demo-public", dpop=DPoPKey().proof())
    assert_oauth_error(wrong, "invalid_dpop_proof")
    assert server.issued(next_form, client="demo-public", dpop=key.proof())["token_type"] == "DPoP"
