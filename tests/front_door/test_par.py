"""Pushed authorization requests (RFC 9126): client authentication, 201 with a single-use
`request_uri` and `expires_in`, /authorize using the pushed parameters only, expiry,
`require_pushed_authorization_requests` per client and server-wide, DPoP at /par."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bridge.front_door.pushed_requests import REQUEST_URI_PREFIX, id_hash
from tests.front_door.helpers import (
    CALLBACK,
    SECRETS,
    FrontDoorServer,
    authorization_params,
    claims_of,
    consent,
    front_door_server,
    payment,
    pkce_pair,
    query_of,
    read_details,
    redeem,
    sign_in,
)
from tests.oauth_fixtures import DPoPKey

# The demo policies let any client initiate small payments (customer records: demo clients).
SMALL = payment("20.00")
PUSHED = "SELECT COUNT(*) FROM authorization_requests WHERE kind = 'pushed'"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("par")) as running:
        yield running


def push(
    server: FrontDoorServer,
    params: dict[str, str],
    client_id: str = "web-app",
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    auth = (client_id, secret or SECRETS[client_id]) if client_id in SECRETS else None
    form = dict(params)
    if auth is None:
        form["client_id"] = client_id
    else:
        form.pop("client_id", None)
    return httpx.post(server.url + "/par", data=form, auth=auth, headers=headers or {}, timeout=30)


def follow(
    server: FrontDoorServer, query: dict[str, str], decision: str = "approve"
) -> httpx.Response:
    with server.browser() as browser:
        started = browser.get("/authorize?" + urlencode(query))
        if started.status_code != 303:
            return started
        interaction = started.headers["location"]
        assert sign_in(browser, interaction, "alice").status_code == 303
        return consent(browser, interaction, decision)


def test_a_pushed_request_gives_a_single_use_request_uri(server: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="web-app", details=SMALL)
    pushed = push(server, params)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    body = pushed.json()
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX) and body["expires_in"] == 60
    query = {"client_id": "web-app", "request_uri": body["request_uri"]}
    answer = follow(server, query)
    assert answer.status_code == 303
    result = query_of(answer.headers["location"])
    assert result["state"] == params["state"] and result["iss"] == server.issuer
    token = redeem(server, result["code"], verifier, client_id="web-app")
    assert token.status_code == 200, token.text
    assert claims_of(token.json()["access_token"])["sub"] == "alice"
    # Used once: the same request_uri again is an error page, not a redirect.
    with server.browser() as browser:
        again = browser.get("/authorize?" + urlencode(query))
    assert again.status_code == 400 and "location" not in again.headers


def test_authorize_uses_the_pushed_parameters_only(server: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="web-app", details=payment("20.00"))
    request_uri = push(server, params).json()["request_uri"]
    # What the front channel adds is ignored: other details, another state, no PKCE.
    query = {
        "client_id": "web-app",
        "request_uri": request_uri,
        "authorization_details": json.dumps(read_details("cust-9999")),
        "state": "from-the-front-channel",
        "redirect_uri": "https://attacker.example/",
    }
    result = query_of(follow(server, query).headers["location"])
    assert result["state"] == params["state"]
    token = redeem(server, result["code"], verifier, client_id="web-app").json()
    assert token["authorization_details"] == payment("20.00")


def test_an_expired_request_uri_is_an_error_page(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    request_uri = push(
        server, authorization_params(challenge, client_id="web-app", details=SMALL)
    ).json()["request_uri"]
    reference = request_uri.removeprefix(REQUEST_URI_PREFIX)
    server.rows(
        "UPDATE authorization_requests SET expires_at = created_at - 1 WHERE id_hash = ?",
        id_hash(reference),
    )
    response = follow(server, {"client_id": "web-app", "request_uri": request_uri})
    assert response.status_code == 400 and "expired or was already used" in response.text


def test_a_request_uri_is_only_its_clients(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    request_uri = push(
        server, authorization_params(challenge, client_id="web-app", details=SMALL)
    ).json()["request_uri"]
    response = follow(server, {"client_id": "demo-web", "request_uri": request_uri})
    assert response.status_code == 400 and "location" not in response.headers
    for made_up in ("urn:ietf:params:oauth:request_uri:nope", "https://attacker.example/r"):
        assert follow(server, {"client_id": "web-app", "request_uri": made_up}).status_code == 400


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"secret": "wrong"}, 401, "invalid_client"),
        ({"redirect_uri": "https://attacker.example/cb"}, 400, "invalid_request"),
        ({"redirect_uri": ""}, 400, "invalid_request"),
        ({"request_uri": REQUEST_URI_PREFIX + "x"}, 400, "invalid_request"),
        ({"code_challenge_method": "plain"}, 400, "invalid_request"),
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"authorization_details": "[{}]"}, 400, "invalid_authorization_details"),
    ],
)
def test_par_errors_are_oauth_json(
    server: FrontDoorServer, change: dict[str, str], status: int, error: str
) -> None:
    _, challenge = pkce_pair()
    secret = change.pop("secret", None)
    params = {
        k: v
        for k, v in authorization_params(
            challenge, client_id="web-app", details=SMALL, **change
        ).items()
    }
    before = server.rows(PUSHED)
    response = push(server, params, secret=secret)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    # Nothing was stored for a refused request.
    assert server.rows(PUSHED) == before


def test_a_public_client_pushes_with_its_client_id(server: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    pushed = push(server, authorization_params(challenge), client_id="demo-web")
    assert pushed.status_code == 201, pushed.text
    answer = follow(server, {"client_id": "demo-web", "request_uri": pushed.json()["request_uri"]})
    code = query_of(answer.headers["location"])["code"]
    assert redeem(server, code, verifier).status_code == 200


def test_a_client_that_must_push_succeeds_with_par(server: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    pushed = push(
        server,
        authorization_params(challenge, client_id="par-only", details=SMALL),
        client_id="par-only",
    )
    answer = follow(server, {"client_id": "par-only", "request_uri": pushed.json()["request_uri"]})
    code = query_of(answer.headers["location"])["code"]
    assert redeem(server, code, verifier, client_id="par-only").status_code == 200


def test_a_dpop_proof_at_par_binds_the_code_to_its_key(server: FrontDoorServer) -> None:
    key = DPoPKey()
    verifier, challenge = pkce_pair()
    proof = key.proof(htu=server.issuer + "/par")
    pushed = push(
        server,
        authorization_params(challenge, client_id="web-app", details=SMALL),
        headers={"DPoP": proof},
    )
    assert pushed.status_code == 201, pushed.text
    answer = follow(server, {"client_id": "web-app", "request_uri": pushed.json()["request_uri"]})
    code = query_of(answer.headers["location"])["code"]
    assert redeem(server, code, verifier, client_id="web-app").status_code == 400
    # A second code: now with the proof.
    verifier, challenge = pkce_pair()
    pushed = push(
        server,
        authorization_params(challenge, client_id="web-app", details=SMALL),
        headers={"DPoP": key.proof(htu=server.issuer + "/par")},
    )
    answer = follow(server, {"client_id": "web-app", "request_uri": pushed.json()["request_uri"]})
    code = query_of(answer.headers["location"])["code"]
    bound = redeem(
        server,
        code,
        verifier,
        client_id="web-app",
        headers={"DPoP": key.proof(htu=server.issuer + "/token")},
    )
    assert bound.status_code == 200, bound.text
    assert claims_of(bound.json()["access_token"])["cnf"]["jkt"] == key.jkt


def test_a_dpop_jkt_other_than_the_proofs_key_is_refused(server: FrontDoorServer) -> None:
    key, other = DPoPKey(), DPoPKey()
    _, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="web-app", details=SMALL, dpop_jkt=other.jkt)
    response = push(server, params, headers={"DPoP": key.proof(htu=server.issuer + "/par")})
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"


def test_server_wide_every_request_must_be_pushed(tmp_path: Path) -> None:
    extra = "[front_door]\nrequire_pushed_authorization_requests = true\n"
    with front_door_server(tmp_path, extra=extra) as server:
        metadata = httpx.get(server.url + "/.well-known/oauth-authorization-server").json()
        assert metadata["require_pushed_authorization_requests"] is True
        _, challenge = pkce_pair()
        params = authorization_params(challenge)
        with server.browser() as browser:
            refused = browser.get("/authorize?" + urlencode(params))
        assert refused.status_code == 303
        assert query_of(refused.headers["location"])["error"] == "invalid_request"
        assert refused.headers["location"].startswith(CALLBACK)
        pushed = push(server, params, client_id="demo-web")
        assert pushed.status_code == 201
