"""`/authorize` (RFC 6749 §4.1.1 as OAuth 2.1 and RFC 9700 profile it): which errors are a
page and never a redirect (client and redirect URI: no open redirect), which go back with
`state` and `iss`, PKCE S256 only, RAR / scope / resource / dpop_jkt checked as at /token,
both response modes, and the pages' headers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.front_door.helpers import (
    CALLBACK,
    FrontDoorServer,
    authorization_params,
    code_for,
    front_door_server,
    hidden,
    pkce_pair,
    query_of,
    start,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("authorize")) as running:
        yield running


def authorize(server: FrontDoorServer, params: dict[str, str]) -> httpx.Response:
    with server.browser() as browser:
        return start(browser, params)


def redirected_error(
    response: httpx.Response, params: dict[str, str], server: FrontDoorServer
) -> str:
    """The error sent back to the redirect URI, with the request's state and our issuer."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    answer = query_of(location)
    assert answer["state"] == params["state"]
    assert answer["iss"] == server.issuer
    assert "code" not in answer
    return answer["error"]


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "This request cannot go on" in response.text


# -- errors about the client or the redirect URI: a page, never a redirect ------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/callback",
        CALLBACK + "/../evil",
        CALLBACK + "x",
        CALLBACK + "?next=https://attacker.example",
        "http://127.0.0.1:8766/callback",
        "HTTP://127.0.0.1:8765/callback",
        "http://127.0.0.1:8765/callback#frag",
        "http://127.0.0.1:8765/Callback",
    ],
)
def test_an_unregistered_redirect_uri_is_never_followed(
    server: FrontDoorServer, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    response = authorize(server, authorization_params(challenge, redirect_uri=redirect_uri))
    assert_error_page(response)
    assert "attacker" not in response.text.lower() or "not registered" in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": ""},
        {"client_id": "nobody"},
        {"redirect_uri": ""},
        # Known client, but even a bad response_type is not redirected to a wrong URI.
        {"response_type": "token", "redirect_uri": "https://attacker.example/"},
    ],
)
def test_client_and_redirect_errors_are_shown_not_redirected(
    server: FrontDoorServer, params: dict[str, str]
) -> None:
    _, challenge = pkce_pair()
    assert_error_page(authorize(server, authorization_params(challenge, **params)))


def test_a_repeated_parameter_is_an_error_page(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge)
    with server.browser() as browser:
        query = httpx.QueryParams(params).add("redirect_uri", "https://attacker.example/")
        assert_error_page(browser.get("/authorize", params=query))


# -- other errors: back to the redirect URI with state and iss -------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"authorization_details": "not json"}, "invalid_authorization_details"),
        (
            {"authorization_details": json.dumps([{"type": "unknown"}])},
            "invalid_authorization_details",
        ),
        (
            {
                "authorization_details": json.dumps(
                    [{"type": "customer_records", "actions": ["delete"]}]
                )
            },
            "invalid_authorization_details",
        ),
        ({"authorization_details": "", "scope": "admin"}, "invalid_scope"),
        ({"authorization_details": ""}, "invalid_request"),
        ({"resource": "https://crm.example.com/#x"}, "invalid_target"),
        ({"resource": "not-a-uri"}, "invalid_target"),
        ({"dpop_jkt": "not-a-thumbprint"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
)
def test_request_errors_go_back_with_state_and_iss(
    server: FrontDoorServer, change: dict[str, str], error: str
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, **change)
    if change.get("code_challenge") == "":
        params.pop("code_challenge", None)
    assert redirected_error(authorize(server, params), params, server) == error


def test_a_client_without_the_code_grant_is_unauthorized(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="machine")
    assert redirected_error(authorize(server, params), params, server) == "unauthorized_client"


def test_a_client_that_must_push_is_refused_without_par(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="par-only")
    assert redirected_error(authorize(server, params), params, server) == "invalid_request"


def test_an_error_in_form_post_mode_is_posted_back(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, response_mode="form_post", response_type="token")
    response = authorize(server, params)
    assert response.status_code == 200
    assert f'action="{CALLBACK}"' in response.text
    assert hidden(response.text, "error") == "unsupported_response_type"
    assert hidden(response.text, "state") == params["state"]
    assert hidden(response.text, "iss") == server.issuer


# -- what works ----------------------------------------------------------------------------


def test_a_good_request_leads_to_sign_in_and_a_code(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge)
    answer = code_for(server, params)
    assert answer["state"] == params["state"] and answer["iss"] == server.issuer
    assert len(answer["code"]) >= 43


def test_a_registered_query_is_kept_in_the_redirect(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, redirect_uri=CALLBACK + "?from=app")
    answer = code_for(server, params)
    assert answer["from"] == "app" and "code" in answer


def test_post_to_authorize_works_like_get(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    with server.browser() as browser:
        response = browser.post("/authorize", data=authorization_params(challenge))
        assert response.status_code == 303
        assert response.headers["location"].startswith("/interaction/")


def test_pages_are_not_framed_cached_or_scripted(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    with server.browser() as browser:
        started = start(browser, authorization_params(challenge))
        page = browser.get(started.headers["location"])
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert '<link rel="stylesheet" href="/pages/style.css">' in page.text
    css = httpx.get(server.url + "/pages/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_metadata_names_the_front_door(server: FrontDoorServer) -> None:
    metadata = httpx.get(server.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["authorization_endpoint"] == server.issuer + "/authorize"
    assert metadata["pushed_authorization_request_endpoint"] == server.issuer + "/par"
    assert metadata["require_pushed_authorization_requests"] is False
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query", "form_post"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in metadata["grant_types_supported"]
