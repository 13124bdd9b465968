"""Every client authentication method at the live token endpoint: client_secret_basic,
client_secret_post, private_key_jwt (a key pair made by the tests) and none (a public client,
which must prove a DPoP key)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from joserfc.jwk import ECKey

from tests.oauth_fixtures import (
    CLIENT_ASSERTION_TYPE,
    CLIENT_KEY,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    basic_header,
    client_assertion,
    exchange_form,
    oauth_server,
    payment,
    rar,
    read_details,
    secret_of,
)

PAYMENT_FORM = {"grant_type": "client_credentials", "authorization_details": rar(payment())}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("client-auth")) as running:
        yield running


def client_of(server: OAuthServer, body: dict[str, str]) -> str:
    client_id: str = server.verify(body["access_token"])[1]["client_id"]
    return client_id


def test_client_secret_basic(server: OAuthServer) -> None:
    body = server.issued(PAYMENT_FORM, client=None, headers=basic_header("demo-agent"))
    assert client_of(server, body) == "demo-agent"


def test_client_secret_post(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {"client_id": "post-client", "client_secret": secret_of("post-client")}
    body = server.issued(form, client=None)
    assert client_of(server, body) == "post-client"


def test_private_key_jwt(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion("key-client", CLIENT_KEY),
    }
    body = server.issued(form, client=None)
    assert client_of(server, body) == "key-client"


def test_private_key_jwt_with_the_token_endpoint_as_audience(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(aud="https://bridge.test/token"),
    }
    assert client_of(server, server.issued(form, client=None)) == "key-client"


def test_private_key_jwt_signed_by_another_key_is_refused(server: OAuthServer) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": CLIENT_KEY.kid}, private=True)
    form = PAYMENT_FORM | {
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion("key-client", stranger),
    }
    assert_oauth_error(server.token(form, client=None), "invalid_client")


def test_private_key_jwt_assertion_is_accepted_once(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(),
    }
    server.issued(form, client=None)
    assert_oauth_error(server.token(form, client=None), "invalid_client")


def test_none_for_a_public_dpop_client(server: OAuthServer) -> None:
    key = DPoPKey()
    form = exchange_form(read_details("c-1")) | {"client_id": "demo-public"}
    body = server.issued(form, client=None, dpop=key.proof())
    assert body["token_type"] == "DPoP"
    assert client_of(server, body) == "demo-public"


def test_a_secret_client_cannot_switch_method(server: OAuthServer) -> None:
    """demo-agent is registered for client_secret_basic: its secret in the body fails."""
    form = PAYMENT_FORM | {"client_id": "demo-agent", "client_secret": secret_of("demo-agent")}
    assert_oauth_error(server.token(form, client=None), "invalid_client")


def test_a_confidential_client_cannot_pose_as_public(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {"client_id": "demo-agent"}
    assert_oauth_error(server.token(form, client=None, dpop=DPoPKey().proof()), "invalid_client")


def test_two_methods_at_once_are_refused(server: OAuthServer) -> None:
    form = PAYMENT_FORM | {"client_id": "post-client", "client_secret": secret_of("post-client")}
    response = server.token(form, client=None, headers=basic_header("demo-agent"))
    assert_oauth_error(response, "invalid_request")
