"""Every error code of the token endpoint, one test per error path, over real HTTP.

Each error answer must be a JSON body with `error`, `Cache-Control: no-store`, and no token
(`assert_oauth_error`). The PDP-failure and DPoP-nonce paths need servers configured their
own way; everything else shares one server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import POLICIES
from tests.oauth_fixtures import (
    JWT_BEARER,
    STRANGER_KEY,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    basic_header,
    closed_port_url,
    exchange_form,
    id_jag,
    idp_token,
    oauth_server,
    payment,
    rar,
    read_details,
)

READ = rar(read_details("c-1"))
CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "authorization_details": READ}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("errors")) as running:
        yield running


def refresh_token_of(server: OAuthServer, client: str = "demo-agent") -> str:
    body = server.issued(exchange_form(read_details("c-1")), client=client)
    token: str = body["refresh_token"]
    return token


# -- invalid_request ----------------------------------------------------------------------


def test_missing_grant_type(server: OAuthServer) -> None:
    body = assert_oauth_error(server.token({"authorization_details": READ}), "invalid_request")
    assert "grant_type" in body["error_description"]


def test_repeated_parameter(server: OAuthServer) -> None:
    form = CLIENT_CREDENTIALS | {"grant_type": ["client_credentials", "client_credentials"]}
    body = assert_oauth_error(server.token(form), "invalid_request")
    assert "grant_type" in body["error_description"]


def test_wrong_content_type(server: OAuthServer) -> None:
    response = server.http.post(
        "/token", json=CLIENT_CREDENTIALS, headers=basic_header("demo-agent")
    )
    assert_oauth_error(response, "invalid_request")


def test_neither_authorization_details_nor_scope(server: OAuthServer) -> None:
    response = server.token({"grant_type": "client_credentials"})
    assert_oauth_error(response, "invalid_request")


# -- invalid_client -----------------------------------------------------------------------


def test_invalid_client_with_basic_is_401_with_a_challenge(server: OAuthServer) -> None:
    response = server.token(
        CLIENT_CREDENTIALS, client=None, headers=basic_header("demo-agent", "wrong-secret")
    )
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert 'realm="https://bridge.test"' in response.headers["www-authenticate"]


def test_unknown_client_with_basic_answers_like_a_wrong_secret(server: OAuthServer) -> None:
    response = server.token(
        CLIENT_CREDENTIALS, client=None, headers=basic_header("nobody", "wrong-secret")
    )
    body = assert_oauth_error(response, "invalid_client", 401)
    wrong = server.token(
        CLIENT_CREDENTIALS, client=None, headers=basic_header("demo-agent", "wrong-secret")
    )
    assert wrong.json() == body
    assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_id": "post-client", "client_secret": "wrong-secret"},
        {"client_id": "no-such-public-client"},
        {},
    ],
    ids=["client_secret_post", "unknown public client", "no credentials"],
)
def test_invalid_client_without_basic_is_400(
    server: OAuthServer, credentials: dict[str, str]
) -> None:
    form = {"grant_type": "client_credentials", "authorization_details": rar(payment())}
    response = server.token(form | credentials, client=None)
    assert_oauth_error(response, "invalid_client", 400)
    assert "www-authenticate" not in response.headers


# -- unauthorized_client ------------------------------------------------------------------


def test_grant_not_allowed_for_the_client(server: OAuthServer) -> None:
    """post-client is registered for client_credentials only."""
    form = exchange_form(payment())
    assert_oauth_error(server.token(form, client="post-client"), "unauthorized_client")


def test_client_credentials_for_a_public_client(server: OAuthServer) -> None:
    response = server.token(CLIENT_CREDENTIALS, client="demo-public", dpop=DPoPKey().proof())
    assert_oauth_error(response, "unauthorized_client")


# -- unsupported_grant_type ---------------------------------------------------------------


# `authorization_code` is served (the front door): a client without it is unauthorized_client.
@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:example:custom"])
def test_unsupported_grant_type(server: OAuthServer, grant_type: str) -> None:
    form = CLIENT_CREDENTIALS | {"grant_type": grant_type}
    assert_oauth_error(server.token(form), "unsupported_grant_type")


# -- invalid_grant ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        # Claims the trusted issuer, signed by another key.
        lambda: idp_token(key=STRANGER_KEY),
        lambda: idp_token(aud="https://elsewhere.test"),
        lambda: idp_token(expires_in=-300),
        lambda: idp_token(nbf=int(time.time()) + 3600),
        lambda: idp_token(sub=""),
        lambda: "not-a-jwt",
    ],
    ids=["signature", "audience", "expired", "not yet valid", "empty sub", "not a jwt"],
)
def test_bad_subject_token(server: OAuthServer, make: Callable[[], str]) -> None:
    form = exchange_form(read_details("c-1"), subject_token=make())
    body = assert_oauth_error(server.token(form), "invalid_grant")
    assert "subject_token" in body["error_description"]


def test_bad_actor_token(server: OAuthServer) -> None:
    actor = idp_token("agent-7", key=STRANGER_KEY)
    form = exchange_form(read_details("c-1"), actor_token=actor)
    body = assert_oauth_error(server.token(form), "invalid_grant")
    assert "actor_token" in body["error_description"]


def test_subject_token_from_an_untrusted_issuer(server: OAuthServer) -> None:
    token = idp_token(key=STRANGER_KEY, iss="https://stranger.test")
    form = exchange_form(read_details("c-1"), subject_token=token)
    assert_oauth_error(server.token(form), "invalid_grant")


def test_expired_assertion(server: OAuthServer) -> None:
    form = {
        "grant_type": JWT_BEARER,
        "assertion": id_jag("demo-agent", expires_in=-300),
        "authorization_details": READ,
    }
    assert_oauth_error(server.token(form), "invalid_grant")


def test_refresh_token_of_another_client(server: OAuthServer) -> None:
    token = refresh_token_of(server, "demo-agent")
    response = server.token(
        {"grant_type": "refresh_token", "refresh_token": token}, client="other-agent"
    )
    assert_oauth_error(response, "invalid_grant")
    # Refused for the thief; still good for its owner.
    server.issued({"grant_type": "refresh_token", "refresh_token": token})


def test_used_refresh_token(server: OAuthServer) -> None:
    token = refresh_token_of(server)
    server.issued({"grant_type": "refresh_token", "refresh_token": token})
    response = server.token({"grant_type": "refresh_token", "refresh_token": token})
    assert_oauth_error(response, "invalid_grant")


# -- invalid_scope ------------------------------------------------------------------------


def test_scope_not_allowed_for_the_client(server: OAuthServer) -> None:
    response = server.token({"grant_type": "client_credentials", "scope": "admin"})
    body = assert_oauth_error(response, "invalid_scope")
    assert "admin" in body["error_description"]


def test_a_scope_that_is_not_a_scope_token(server: OAuthServer) -> None:
    """RFC 6749 §3.3: scope tokens are printable ASCII separated by spaces; a tab or a line
    break is no separator, and a quote or backslash no part of a token."""
    for scope in ("customer_records:read\tadmin", 'customer_records:"read"', "a\nb"):
        response = server.token({"grant_type": "client_credentials", "scope": scope})
        assert_oauth_error(response, "invalid_scope")


# -- invalid_target -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource", ["crm-api", "/relative/path", "https://api.example.com/x#fragment"]
)
def test_bad_resource(server: OAuthServer, resource: str) -> None:
    response = server.token(CLIENT_CREDENTIALS | {"resource": resource})
    assert_oauth_error(response, "invalid_target")


# -- invalid_authorization_details ----------------------------------------------------------


def details_error(server: OAuthServer, raw: str, client: str = "demo-agent") -> str:
    form = {"grant_type": "client_credentials", "authorization_details": raw}
    body = assert_oauth_error(server.token(form, client=client), "invalid_authorization_details")
    description: str = body["error_description"]
    return description


def test_unknown_type(server: OAuthServer) -> None:
    description = details_error(server, rar([{"type": "medical_records", "actions": ["read"]}]))
    assert "authorization_details[0]" in description
    assert "medical_records" in description


def test_type_not_allowed_for_the_client(server: OAuthServer) -> None:
    """post-client may ask for payments only."""
    description = details_error(server, READ, client="post-client")
    assert "customer_records" in description
    assert "not allowed" in description


@pytest.mark.parametrize(
    "raw",
    [
        '[{"type": "customer_records", "actions": ["read"]',  # not JSON
        '{"type": "customer_records", "actions": ["read"]}',  # not an array
        '["customer_records"]',  # entry not an object
        '[{"actions": ["read"]}]',  # no type
        '[{"type": "customer_records", "actions": "read"}]',  # common field of the wrong type
        "[]",
    ],
    ids=["not json", "not an array", "not an object", "no type", "actions not array", "empty"],
)
def test_malformed_entry(server: OAuthServer, raw: str) -> None:
    assert "authorization_details" in details_error(server, raw)


def test_member_not_in_the_schema(server: OAuthServer) -> None:
    entry = read_details("c-1")[0] | {"purpose": "marketing"}
    description = details_error(server, rar([entry]))
    assert "authorization_details[0]" in description
    assert "purpose" in description


def test_value_the_schema_refuses(server: OAuthServer) -> None:
    entry = read_details("c-1")[0] | {"locations": ["https://elsewhere.example/customers/c-1"]}
    assert "authorization_details[0]" in details_error(server, rar([entry]))


def test_policy_denial_names_the_entry_and_the_action_but_no_policy(server: OAuthServer) -> None:
    """The first entry is permitted, the second is not: the second is named."""
    details = read_details("c-1") + read_details("c-2", actions=("export",))
    description = details_error(server, rar(details))
    assert "authorization_details[1]" in description
    assert "export" in description
    assert "c-2" in description
    policy_text = (POLICIES / "default" / "policies.cedar").read_text(encoding="utf-8")
    for policy_id in re.findall(r'@id\("([^"]+)"\)', policy_text):
        assert policy_id not in description
    for word in ("principal", "forbid", "when", "unless", "context", "@id"):
        assert word not in description


def test_payment_over_the_limit_is_denied(server: OAuthServer) -> None:
    description = details_error(server, rar(payment("1000.01")))
    assert "authorization_details[0]" in description
    assert "initiate" in description


# -- invalid_dpop_proof ------------------------------------------------------------------


def public_exchange(server: OAuthServer, proof: str | None) -> dict[str, str]:
    response = server.token(exchange_form(read_details("c-1")), client="demo-public", dpop=proof)
    return assert_oauth_error(response, "invalid_dpop_proof")


def test_dpop_proof_missing_for_a_dpop_client(server: OAuthServer) -> None:
    public_exchange(server, None)


def test_dpop_proof_with_a_bad_signature(server: OAuthServer) -> None:
    key = DPoPKey()
    public_exchange(server, key.proof(signer=DPoPKey().key))


def test_dpop_proof_for_another_url(server: OAuthServer) -> None:
    public_exchange(server, DPoPKey().proof(htu="https://bridge.test/introspect"))


def test_dpop_proof_for_another_method(server: OAuthServer) -> None:
    public_exchange(server, DPoPKey().proof(htm="GET"))


def test_replayed_dpop_proof(server: OAuthServer) -> None:
    proof = DPoPKey().proof()
    server.issued(exchange_form(read_details("c-1")), client="demo-public", dpop=proof)
    public_exchange(server, proof)


def test_two_dpop_headers(server: OAuthServer) -> None:
    key = DPoPKey()
    response = server.http.post(
        "/token",
        data=exchange_form(read_details("c-1")) | {"client_id": "demo-public"},
        headers=[("DPoP", key.proof()), ("DPoP", key.proof())],
    )
    assert_oauth_error(response, "invalid_dpop_proof")


# -- use_dpop_nonce -----------------------------------------------------------------------


def test_use_dpop_nonce(tmp_path: Path) -> None:
    extra = "\n[oauth.dpop]\nrequire_nonce = true\n"
    with oauth_server(tmp_path, extra=extra) as nonce_server:
        key = DPoPKey()
        first = nonce_server.token(CLIENT_CREDENTIALS, dpop=key.proof())
        assert_oauth_error(first, "use_dpop_nonce")
        nonce = first.headers["dpop-nonce"]
        assert nonce
        # A nonce the server did not issue is no better than none.
        forged = nonce_server.token(CLIENT_CREDENTIALS, dpop=key.proof(nonce="A" * 32))
        assert_oauth_error(forged, "use_dpop_nonce")
        body = nonce_server.issued(CLIENT_CREDENTIALS, dpop=key.proof(nonce=nonce))
        assert body["token_type"] == "DPoP"
        assert nonce_server.verify(body["access_token"])[1]["cnf"] == {"jkt": key.jkt}


# -- server_error -------------------------------------------------------------------------


def test_server_error_when_the_pdp_cannot_decide(tmp_path: Path) -> None:
    extra = f"""
[pdp]
kind = "remote"

[pdp.remote]
url = "{closed_port_url()}"
retries = 0
discovery = false
timeout_seconds = 2
"""
    with oauth_server(tmp_path, extra=extra) as remote:
        response = remote.token(CLIENT_CREDENTIALS)
        body = assert_oauth_error(response, "server_error", 500)
        assert "refresh_token" not in body
        # Nor for a grant that would carry a refresh token.
        exchange = remote.token(exchange_form(read_details("c-1")))
        assert "refresh_token" not in assert_oauth_error(exchange, "server_error", 500)


def test_unsupported_subject_token_type(server: OAuthServer) -> None:
    form = exchange_form(read_details("c-1")) | {"subject_token_type": "urn:example:saml"}
    body = assert_oauth_error(server.token(form), "invalid_request")
    # RFC 6749 §5.2 members only.
    assert set(body) <= {"error", "error_description", "error_uri"}
