"""Bad input at the front door is a protocol error or an error page, never a 500, never a
stack trace, never a half-written record."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.front_door.helpers import (
    CALLBACK,
    FrontDoorServer,
    authorization_params,
    front_door_server,
    pkce_pair,
    sign_in,
    start,
)

HOSTILE = [
    "%ff%fe",
    "x" * 5000,
    json.dumps([{"type": "customer_records", "actions": ["read"]}] * 500),
    json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}),
    "<script>alert(1)</script>",
    "\x00\x01",
]
NAMES = [
    "client_id",
    "redirect_uri",
    "state",
    "authorization_details",
    "scope",
    "resource",
    "code_challenge",
    "dpop_jkt",
    "request_uri",
    "response_mode",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("hostile")) as running:
        yield running


def no_trace(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.headers.get("content-type", "").startswith("text/html"):
        # Pages escape what they show (JSON errors may quote it: it is not markup there).
        assert "<script>alert(1)</script>" not in response.text


@pytest.mark.parametrize("name", NAMES)
def test_hostile_values_at_authorize(server: FrontDoorServer, name: str) -> None:
    _, challenge = pkce_pair()
    for value in HOSTILE:
        params = authorization_params(challenge)
        params[name] = value
        with server.browser() as browser:
            response = browser.get("/authorize", params=params)
        no_trace(response)
        location = response.headers.get("location", "")
        # Only ever to the registered callback (an error) or on to the interaction.
        assert location == "" or location.startswith((CALLBACK, "/interaction/"))


@pytest.mark.parametrize(
    "query",
    [
        "client_id=%ED%A0%80&redirect_uri=%ff",  # a lone surrogate, a byte that is no UTF-8
        "client_id=demo-web&redirect_uri=" + CALLBACK.replace(":", "%3A") + "&state=%ff%00",
        "client_id=demo-web&client_id=demo-web",
        "%%%&&&===",
    ],
)
def test_raw_hostile_queries_at_authorize(server: FrontDoorServer, query: str) -> None:
    with server.browser() as browser:
        no_trace(browser.get("/authorize?" + query))


@pytest.mark.parametrize("name", NAMES)
def test_hostile_values_at_par(server: FrontDoorServer, name: str) -> None:
    _, challenge = pkce_pair()
    for value in HOSTILE:
        params = authorization_params(challenge)
        params[name] = value
        response = httpx.post(server.url + "/par", data=params)
        no_trace(response)
        assert response.headers["content-type"] == "application/json"
        if response.status_code != 201:
            assert "error" in response.json()


def test_hostile_sign_in_and_consent_forms(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    with server.browser() as browser:
        interaction = start(browser, authorization_params(challenge)).headers["location"]
        for value in HOSTILE:
            no_trace(sign_in(browser, interaction, value, value))
            no_trace(
                browser.post(
                    interaction + "/consent", data={"csrf_token": value, "decision": value}
                )
            )
        no_trace(
            browser.post(
                interaction + "/sign-in",
                content=b"\xff" * 100,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        )
        no_trace(
            browser.post(
                interaction + "/sign-in",
                content=b"{}",
                headers={"content-type": "application/json"},
            )
        )
        no_trace(browser.get("/interaction/" + "%ff" * 30))
    with httpx.Client(base_url=server.url, cookies={"bridge_session": "x" * 5000}) as forged:
        no_trace(forged.get(interaction))
        no_trace(forged.post("/sign-out", data={"csrf_token": "x"}))
