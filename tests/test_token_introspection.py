"""RFC 7662 introspection and RFC 7009 revocation at the live server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.oauth_fixtures import (
    ISSUER,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    b64url,
    basic_header,
    exchange_form,
    oauth_server,
    payment,
    rar,
    read_details,
)

INACTIVE = {"active": False}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("introspection")) as running:
        yield running


def client_token(server: OAuthServer, details: list[dict[str, Any]] | None = None) -> str:
    form = {
        "grant_type": "client_credentials",
        "authorization_details": rar(details or read_details("c-1")),
    }
    token: str = server.issued(form)["access_token"]
    return token


def exchanged(server: OAuthServer, client: str = "demo-agent") -> dict[str, Any]:
    return server.issued(exchange_form(read_details("c-1")), client=client)


# -- introspection ------------------------------------------------------------------------


def test_active_access_token(server: OAuthServer) -> None:
    details = read_details("c-1") + payment()
    token = client_token(server, details)
    body = server.introspect(token)
    _, claims = server.verify(token)
    assert body["active"] is True
    assert body["authorization_details"] == details  # a top-level member (RFC 9396 §9.2)
    assert body["token_type"] == "Bearer"
    assert body["iss"] == ISSUER
    assert body["client_id"] == body["sub"] == "demo-agent"
    for name in ("aud", "iat", "exp", "jti"):
        assert body[name] == claims[name]


def test_active_dpop_bound_token(server: OAuthServer) -> None:
    key = DPoPKey()
    body = server.issued(exchange_form(read_details("c-1")), client="demo-public", dpop=key.proof())
    seen = server.introspect(body["access_token"])
    assert seen["active"] is True
    assert seen["token_type"] == "DPoP"
    assert seen["cnf"] == {"jkt": key.jkt}
    assert seen["act"] == {"sub": "demo-public"}
    assert seen["sub"] == "alice@example.com"


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2JyaWRnZS50ZXN0In0."],
    ids=["opaque", "three dots", "alg none"],
)
def test_unknown_tokens_are_inactive(server: OAuthServer, token: str) -> None:
    assert server.introspect(token) == INACTIVE


def test_a_forged_token_is_inactive(server: OAuthServer) -> None:
    """A valid token whose claims were changed (still valid JSON) no longer verifies."""
    header, payload, signature = client_token(server).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = b64url(json.dumps(claims).encode())
    assert server.introspect(f"{header}.{forged}.{signature}") == INACTIVE


def test_introspection_needs_client_authentication(server: OAuthServer) -> None:
    response = server.post("/introspect", {"token": client_token(server)}, client=None)
    assert_oauth_error(response, "invalid_client")
    response = server.post(
        "/introspect",
        {"token": client_token(server)},
        client=None,
        headers=basic_header("resource-server", "wrong"),
    )
    assert_oauth_error(response, "invalid_client", 401)


def test_a_public_client_cannot_introspect(server: OAuthServer) -> None:
    """RFC 7662 §2.1/§4: the endpoint requires authorization (against token scanning). A
    public client has no credentials: its `client_id` alone must not open it."""
    token = client_token(server, payment())
    response = server.post("/introspect", {"token": token}, client="demo-public")
    assert_oauth_error(response, "invalid_client")
    assert "authorization_details" not in response.text


def test_refresh_token_is_visible_only_to_its_client(server: OAuthServer) -> None:
    refresh_token = exchanged(server)["refresh_token"]
    own = server.introspect(refresh_token, client="demo-agent")
    assert own["active"] is True
    assert own["client_id"] == "demo-agent"
    assert "token_type" not in own  # RFC 7662: token_type names access token types only
    assert own["exp"] > own["iat"]
    assert server.introspect(refresh_token, client="other-agent") == INACTIVE
    assert server.introspect(refresh_token, client="resource-server") == INACTIVE


# -- revocation ---------------------------------------------------------------------------


def test_revoked_access_token_is_inactive(server: OAuthServer) -> None:
    token = client_token(server)
    keep = client_token(server)
    assert server.introspect(token)["active"] is True
    server.revoke(token, client="demo-agent", hint="access_token")
    assert server.introspect(token) == INACTIVE
    assert server.introspect(keep)["active"] is True  # only that one


def test_revoked_refresh_token_cannot_be_used(server: OAuthServer) -> None:
    body = exchanged(server)
    server.revoke(body["refresh_token"], client="demo-agent", hint="refresh_token")
    assert server.introspect(body["refresh_token"], client="demo-agent") == INACTIVE
    response = server.token({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert_oauth_error(response, "invalid_grant")


def test_revoking_a_rotated_family_member_revokes_its_successor(server: OAuthServer) -> None:
    first = exchanged(server)["refresh_token"]
    second = server.issued({"grant_type": "refresh_token", "refresh_token": first})
    server.revoke(second["refresh_token"], client="demo-agent")
    response = server.token({"grant_type": "refresh_token", "refresh_token": first})
    assert_oauth_error(response, "invalid_grant")


def test_revocation_of_another_clients_tokens_changes_nothing(server: OAuthServer) -> None:
    body = exchanged(server)
    access, refresh_token = body["access_token"], body["refresh_token"]
    server.revoke(access, client="other-agent")  # 200, whatever the token
    server.revoke(refresh_token, client="other-agent")
    assert server.introspect(access)["active"] is True
    assert server.introspect(refresh_token, client="demo-agent")["active"] is True
    refreshed = server.token({"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert refreshed.status_code == 200, refreshed.text


def test_revoking_an_unknown_token_answers_200(server: OAuthServer) -> None:
    response = server.post("/revoke", {"token": "never-issued"}, client="demo-agent")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


def test_revocation_needs_client_authentication(server: OAuthServer) -> None:
    token = client_token(server)
    response = server.post("/revoke", {"token": token}, client=None)
    assert_oauth_error(response, "invalid_client")
    assert server.introspect(token)["active"] is True
