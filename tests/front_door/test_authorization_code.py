"""`grant_type=authorization_code` at /token: the person as principal, the PDP deciding
again, and every binding of the code — single use (a second use revokes what the first
issued), lifetime, client, redirect URI, PKCE verifier, dpop_jkt; refresh as today."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.front_door.authorization_codes import code_hash
from tests.front_door.helpers import (
    CALLBACK,
    FrontDoorServer,
    authorization_params,
    claims_of,
    code_for,
    front_door_server,
    payment,
    pkce_pair,
    read_details,
    redeem,
)
from tests.oauth_fixtures import DPoPKey


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("code")) as running:
        yield running


def fresh_code(server: FrontDoorServer, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    return code_for(server, authorization_params(challenge, **extra))["code"], verifier


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error: str = response.json()["error"]
    return error


def test_the_code_yields_alices_token(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    response = redeem(server, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["authorization_details"] == read_details("cust-0001")
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "demo-web"
    assert claims["iss"] == server.issuer
    assert claims["authorization_details"] == read_details("cust-0001")
    assert "act" not in claims
    assert "refresh_token" in body


def test_the_refresh_token_refreshes_as_today(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    first = redeem(server, code, verifier).json()
    refreshed = httpx.post(
        server.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "demo-web",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["sub"] == "alice"
    assert refreshed.json()["refresh_token"] != first["refresh_token"]


def test_a_second_use_is_refused_and_revokes_what_the_first_issued(
    server: FrontDoorServer,
) -> None:
    code, verifier = fresh_code(server)
    first = redeem(server, code, verifier).json()
    assert server.introspect(first["access_token"])["active"] is True
    assert error_of(redeem(server, code, verifier)) == "invalid_grant"
    assert server.introspect(first["access_token"])["active"] is False
    refresh = httpx.post(
        server.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "demo-web",
        },
    )
    assert error_of(refresh) == "invalid_grant"


def test_a_wrong_verifier_is_invalid_grant_and_spends_the_code(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    other_verifier, _ = pkce_pair()
    assert error_of(redeem(server, code, other_verifier)) == "invalid_grant"
    assert error_of(redeem(server, code, verifier)) == "invalid_grant"


def test_a_missing_verifier_is_invalid_request_and_keeps_the_code(
    server: FrontDoorServer,
) -> None:
    code, verifier = fresh_code(server)
    missing = httpx.post(
        server.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "demo-web",
        },
    )
    assert error_of(missing) == "invalid_request"
    assert redeem(server, code, verifier).status_code == 200


def test_another_redirect_uri_is_invalid_grant(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    assert (
        error_of(redeem(server, code, verifier, redirect_uri=CALLBACK + "?from=app"))
        == "invalid_grant"
    )


def test_another_client_cannot_redeem_the_code(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    assert error_of(redeem(server, code, verifier, client_id="other-web")) == "invalid_grant"


def test_an_expired_code_is_invalid_grant(server: FrontDoorServer) -> None:
    code, verifier = fresh_code(server)
    # Its 60 seconds pass (the clock of the record, not of the test).
    server.rows(
        "UPDATE authorization_codes SET expires_at = issued_at - 1 WHERE code_hash = ?",
        code_hash(code),
    )
    assert error_of(redeem(server, code, verifier)) == "invalid_grant"


def test_the_code_lives_at_most_sixty_seconds(server: FrontDoorServer) -> None:
    code, _ = fresh_code(server)
    [(issued, expires)] = server.rows(
        "SELECT issued_at, expires_at FROM authorization_codes WHERE code_hash = ?", code_hash(code)
    )
    assert 0 < expires - issued <= 60


def test_codes_are_stored_only_as_hashes(server: FrontDoorServer) -> None:
    code, _ = fresh_code(server)
    dump = repr(server.rows("SELECT * FROM authorization_codes"))
    assert code not in dump and code_hash(code) in dump


def test_an_unknown_code_and_refused_parameters(server: FrontDoorServer) -> None:
    verifier, _ = pkce_pair()
    assert error_of(redeem(server, "not-a-code", verifier)) == "invalid_grant"
    code, verifier = fresh_code(server)
    widened = httpx.post(
        server.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": CALLBACK,
            "client_id": "demo-web",
            "scope": "customer_records:read",
        },
    )
    assert error_of(widened) == "invalid_request"


def test_a_code_bound_to_a_dpop_key_needs_a_proof_of_it(server: FrontDoorServer) -> None:
    key, stranger = DPoPKey(), DPoPKey()
    token_url = server.issuer + "/token"
    code, verifier = fresh_code(server, dpop_jkt=key.jkt)
    assert error_of(redeem(server, code, verifier)) == "invalid_grant"
    code, verifier = fresh_code(server, dpop_jkt=key.jkt)
    wrong = redeem(server, code, verifier, headers={"DPoP": stranger.proof(htu=token_url)})
    assert error_of(wrong) == "invalid_grant"
    code, verifier = fresh_code(server, dpop_jkt=key.jkt)
    bound = redeem(server, code, verifier, headers={"DPoP": key.proof(htu=token_url)})
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"
    assert claims_of(bound.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_the_pdp_decides_again_at_the_token_endpoint(server: FrontDoorServer) -> None:
    # Consent does not stand in for the policy: an export still needs a manager.
    verifier, challenge = pkce_pair()
    params = authorization_params(challenge, details=read_details("cust-0001", actions=("export",)))
    code = code_for(server, params)["code"]
    refused = redeem(server, code, verifier)
    assert error_of(refused) == "invalid_authorization_details"
    verifier, challenge = pkce_pair()
    code = code_for(server, authorization_params(challenge, details=payment("999.00")))["code"]
    assert redeem(server, code, verifier).status_code == 200
