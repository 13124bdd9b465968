"""RFC 8414 authorization server metadata of the live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REPO
from tests.oauth_fixtures import ISSUER, JWT_BEARER, TOKEN_EXCHANGE, OAuthServer, oauth_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    extra = '\n[oauth.dpop]\nalgorithms = ["ES256", "EdDSA"]\n'
    with oauth_server(tmp_path_factory.mktemp("metadata"), extra=extra) as running:
        yield running


@pytest.fixture(scope="module")
def metadata(server: OAuthServer) -> dict[str, Any]:
    response = server.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_issuer_and_endpoints(metadata: dict[str, Any]) -> None:
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == ISSUER + "/token"
    assert metadata["introspection_endpoint"] == ISSUER + "/introspect"
    assert metadata["revocation_endpoint"] == ISSUER + "/revoke"
    assert metadata["jwks_uri"] == ISSUER + "/jwks"


def test_endpoints_are_served_where_metadata_says(
    server: OAuthServer, metadata: dict[str, Any]
) -> None:
    for member in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        path = metadata[member].removeprefix(ISSUER)
        # Unauthenticated: a real OAuth error, not a 404 from routing.
        response = server.http.post(path, data={"token": "x", "grant_type": "client_credentials"})
        assert response.json()["error"] == "invalid_client", member
    jwks = server.http.get(metadata["jwks_uri"].removeprefix(ISSUER))
    assert jwks.status_code == 200 and jwks.json()["keys"]


def test_grant_types(metadata: dict[str, Any]) -> None:
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        TOKEN_EXCHANGE,
        JWT_BEARER,
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:deferred",
        "urn:openid:params:grant-type:ciba",
    }


def test_deferred_token_responses_are_advertised(metadata: dict[str, Any]) -> None:
    """DTR §5.1/§8.4: support, and cancellation by revoking the deferral code."""
    assert metadata["deferred_token_response_supported"] is True
    assert (
        "urn:ietf:params:oauth:token-type:deferral-code"
        in (metadata["revocation_endpoint_token_type_values_supported"])
    )


def test_client_authentication_methods(metadata: dict[str, Any]) -> None:
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    signing = set(metadata["token_endpoint_auth_signing_alg_values_supported"])
    assert "ES256" in signing
    assert not {"none", "HS256"} & signing


def test_authorization_details_types_are_the_profiles(metadata: dict[str, Any]) -> None:
    profile_types = {
        json.loads(path.read_text(encoding="utf-8"))["type"]
        for path in (REPO / "profiles").glob("*.json")
    }
    assert profile_types  # the repository ships profiles
    assert set(metadata["authorization_details_types_supported"]) == profile_types
    assert len(metadata["authorization_details_types_supported"]) == len(profile_types)


def test_dpop_algorithms_follow_the_configuration(metadata: dict[str, Any]) -> None:
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA"]
