"""The token endpoint over real HTTP: every grant, and the RFC 9068 access token each mints.

The bridge runs with the demo policies (tests/oauth_fixtures.py): `demo-agent` may read
customer records for itself, users may read them through `demo-agent` and `demo-public`, and
anyone may initiate a payment in EUR up to 1000.00.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oauth_fixtures import (
    ACCESS_TOKEN_TYPE,
    IDP,
    ISSUER,
    JWT_BEARER,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    exchange_form,
    id_jag,
    idp_token,
    oauth_server,
    payment,
    rar,
    read_details,
)

RFC_9068_CLAIMS = {"iss", "sub", "aud", "client_id", "iat", "exp", "jti"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("grants")) as running:
        yield running


def access_token_claims(
    server: OAuthServer, body: dict[str, Any], details: list[dict[str, Any]]
) -> dict[str, Any]:
    """Checks shared by every token response; returns the verified access token claims."""
    assert body["authorization_details"] == details  # RFC 9396 §7
    header, claims = server.verify(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"] in {k["kid"] for k in server.jwks()["keys"]}
    assert claims.keys() >= RFC_9068_CLAIMS
    assert claims["iss"] == ISSUER
    assert claims["authorization_details"] == details
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == body["expires_in"] > 0
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    return claims


def test_client_credentials(server: OAuthServer) -> None:
    details = read_details("c-1", "c-2")
    response = server.token(
        {"grant_type": "client_credentials", "authorization_details": rar(details)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # RFC 6749 §5.1
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body  # never for client_credentials
    assert "issued_token_type" not in body
    claims = access_token_claims(server, body, details)
    assert claims["sub"] == claims["client_id"] == "demo-agent"
    # Audience: the origin of the granted locations (no RFC 8707 resource sent).
    assert claims["aud"] == ["https://crm.example.com"]
    assert "act" not in claims and "cnf" not in claims


def test_client_credentials_with_scope_and_resource(server: OAuthServer) -> None:
    body = server.issued(
        {
            "grant_type": "client_credentials",
            "scope": "customer_records:read",
            "resource": "https://api.crm.example.com/",
        }
    )
    assert body["scope"] == "customer_records:read"
    assert "authorization_details" not in body
    _, claims = server.verify(body["access_token"])
    assert claims["scope"] == "customer_records:read"
    assert claims["aud"] == ["https://api.crm.example.com/"]


def test_every_token_has_its_own_jti(server: OAuthServer) -> None:
    form = {"grant_type": "client_credentials", "authorization_details": rar(payment())}
    jtis = {server.verify(server.issued(form)["access_token"])[1]["jti"] for _ in range(3)}
    assert len(jtis) == 3


def test_token_exchange_without_actor_token_acts_as_the_client(server: OAuthServer) -> None:
    details = read_details("c-4815")
    body = server.issued(exchange_form(details, subject_token=idp_token("alice@example.com")))
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    claims = access_token_claims(server, body, details)
    assert claims["sub"] == "alice@example.com"
    assert claims["client_id"] == "demo-agent"
    assert claims["act"] == {"sub": "demo-agent"}


def test_token_exchange_with_actor_token(server: OAuthServer) -> None:
    details = read_details("c-4815")
    actor = idp_token("agent-7", act={"sub": "orchestrator-1"})
    body = server.issued(
        exchange_form(details, subject_token=idp_token("bob@example.com"), actor_token=actor)
    )
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    claims = access_token_claims(server, body, details)
    assert claims["sub"] == "bob@example.com"
    assert claims["client_id"] == "demo-agent"
    # The actor token's subject and issuer; the chain it carried nests below it.
    assert claims["act"] == {"sub": "agent-7", "iss": IDP, "act": {"sub": "orchestrator-1"}}


def test_token_exchange_is_decided_for_the_subject(server: OAuthServer) -> None:
    """Users may read, never export: the PDP is asked about the subject, not the client."""
    response = server.token(exchange_form(read_details("c-1", actions=("export",))))
    body = assert_oauth_error(response, "invalid_authorization_details")
    assert "export" in body["error_description"]


def test_jwt_bearer_id_jag(server: OAuthServer) -> None:
    details = read_details("c-9")
    body = server.issued(
        {
            "grant_type": JWT_BEARER,
            "assertion": id_jag("demo-agent", sub="carol@example.com"),
            "authorization_details": rar(details),
        }
    )
    assert body["token_type"] == "Bearer"
    assert "issued_token_type" not in body
    claims = access_token_claims(server, body, details)
    assert claims["sub"] == "carol@example.com"
    assert claims["client_id"] == "demo-agent"
    assert claims["act"] == {"sub": "demo-agent"}


def test_jwt_bearer_id_jag_for_a_public_dpop_client(server: OAuthServer) -> None:
    key = DPoPKey()
    details = read_details("c-9")
    body = server.issued(
        {
            "grant_type": JWT_BEARER,
            "assertion": id_jag("demo-public"),
            "authorization_details": rar(details),
        },
        client="demo-public",
        dpop=key.proof(),
    )
    assert body["token_type"] == "DPoP"
    claims = access_token_claims(server, body, details)
    assert claims["client_id"] == "demo-public"
    assert claims["act"] == {"sub": "demo-public"}
    assert claims["cnf"] == {"jkt": key.jkt}


def test_id_jag_issued_to_another_client_is_refused(server: OAuthServer) -> None:
    response = server.token(
        {
            "grant_type": JWT_BEARER,
            "assertion": id_jag("other-agent"),
            "authorization_details": rar(read_details("c-9")),
        }
    )
    assert_oauth_error(response, "invalid_grant")


def test_an_assertion_is_accepted_once(server: OAuthServer) -> None:
    form = {
        "grant_type": JWT_BEARER,
        "assertion": id_jag("demo-agent"),
        "authorization_details": rar(read_details("c-9")),
    }
    server.issued(form)
    assert_oauth_error(server.token(form), "invalid_grant")


def test_the_token_carries_exactly_what_was_requested(server: OAuthServer) -> None:
    """Two entries of two types: both granted, in order, unchanged (RFC 9396 §7)."""
    details = read_details("c-1") + payment("999.99")
    body = server.issued(
        {"grant_type": "client_credentials", "authorization_details": rar(details)}
    )
    claims = access_token_claims(server, body, details)
    assert claims["aud"] == ["https://crm.example.com", "https://bank.example.com"]


def test_id_jag_of_another_client_cannot_be_redeemed_by_token_exchange(
    server: OAuthServer,
) -> None:
    """An ID-JAG is issued to one client (its `client_id`); presenting it as a token-exchange
    `subject_token` must not sidestep that binding."""
    jag = id_jag("other-agent", sub="dave@example.com")
    response = server.token(exchange_form(read_details("c-1"), subject_token=jag))
    assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize("typ", ["application/oauth-id-jag+jwt", "OAUTH-ID-JAG+JWT"])
def test_id_jag_typ_is_compared_as_a_media_type(server: OAuthServer, typ: str) -> None:
    """RFC 7515 §4.1.9: `typ` is a media type (case-insensitive, `application/` optional), so
    these are ID-JAGs too, and one issued to another client is refused."""
    assertion = idp_token("dave@example.com", typ=typ, client_id="other-agent")
    response = server.token(
        {
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "authorization_details": rar(read_details("c-1")),
        }
    )
    assert_oauth_error(response, "invalid_grant")
