"""The refresh_token grant over real HTTP: rotation, re-evaluation against the current policy,
narrowing and widening, and reuse of a rotated token revoking the whole family.

The server decides with a copy of the demo policies that one test edits (the store reloads
within 0.2 s; the test waits for the AuthZEN API to show the new decision before refreshing).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.oauth_fixtures import (
    OAuthServer,
    assert_oauth_error,
    basic_header,
    exchange_form,
    idp_token,
    oauth_server,
    rar,
    read_details,
)

# What the delegated-read policy decides for alice reading through demo-agent.
ALICE_READS_VIA_DEMO_AGENT = {
    "subject": {"type": "user", "id": "alice@example.com"},
    "action": {"name": "read"},
    "resource": {"type": "CustomerRecord", "id": "c-1"},
    "context": {"client_id": "demo-agent"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("refresh"), copy_policies=True) as running:
        yield running


def first_grant(server: OAuthServer, details: list[dict[str, Any]]) -> dict[str, Any]:
    """A token exchange for alice through demo-agent, which comes with a refresh token."""
    body = server.issued(exchange_form(details, subject_token=idp_token("alice@example.com")))
    assert isinstance(body.get("refresh_token"), str)
    return body


def refresh(server: OAuthServer, token: str, details: list[dict[str, Any]] | None = None) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    if details is not None:
        form["authorization_details"] = rar(details)
    return server.token(form)


def test_rotation_keeps_the_grant(server: OAuthServer) -> None:
    details = read_details("c-1")
    old = first_grant(server, details)["refresh_token"]
    old_expiry = server.introspect(old, client="demo-agent")["exp"]
    response = refresh(server, old)
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert body["refresh_token"] != old
    assert body["authorization_details"] == details
    _, claims = server.verify(body["access_token"])
    assert claims["sub"] == "alice@example.com"
    assert claims["act"] == {"sub": "demo-agent"}
    assert claims["authorization_details"] == details
    # The used token is gone; the new one ends when the family ends.
    assert server.introspect(old, client="demo-agent") == {"active": False}
    assert server.introspect(body["refresh_token"], client="demo-agent")["exp"] == old_expiry


def test_refresh_is_re_evaluated_against_the_current_policy(server: OAuthServer) -> None:
    token = first_grant(server, read_details("c-1"))["refresh_token"]
    policies = server.policies / "policies.cedar"
    original = policies.read_text(encoding="utf-8")
    narrowed = original.replace(
        '["demo-agent", "demo-public", "demo-web"]', '["demo-public", "demo-web"]'
    )
    assert narrowed != original
    try:
        policies.write_text(narrowed, encoding="utf-8")
        server.wait_for_decision(ALICE_READS_VIA_DEMO_AGENT, False)
        refused = assert_oauth_error(refresh(server, token), "invalid_authorization_details")
        assert "authorization_details[0]" in refused["error_description"]
        assert "read" in refused["error_description"]
    finally:
        policies.write_text(original, encoding="utf-8")
    server.wait_for_decision(ALICE_READS_VIA_DEMO_AGENT, True)
    # The refused refresh did not use the token up: once permitted again, it works.
    again = refresh(server, token)
    assert again.status_code == 200, again.text


def test_narrowing_refresh_gives_fewer_details(server: OAuthServer) -> None:
    token = first_grant(server, read_details("c-1", "c-2"))["refresh_token"]
    fewer = read_details("c-1")
    response = refresh(server, token, fewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["authorization_details"] == fewer
    assert server.verify(body["access_token"])[1]["authorization_details"] == fewer
    # The narrowed grant is now the grant: its refresh cannot win c-2 back.
    back = refresh(server, body["refresh_token"], read_details("c-1", "c-2"))
    assert_oauth_error(back, "invalid_authorization_details")


def test_refresh_without_details_keeps_what_was_granted(server: OAuthServer) -> None:
    details = read_details("c-1", "c-2")
    token = first_grant(server, details)["refresh_token"]
    body = refresh(server, token).json()
    assert body["authorization_details"] == details


@pytest.mark.parametrize(
    "wider",
    [
        read_details("c-1", "c-3"),  # another record (the policy would permit it)
        read_details("c-1", actions=("read", "export")),  # another action
        read_details("c-1") + read_details("c-5"),  # another entry
    ],
    ids=["location", "action", "entry"],
)
def test_widening_refresh_is_refused(server: OAuthServer, wider: list[dict[str, Any]]) -> None:
    token = first_grant(server, read_details("c-1"))["refresh_token"]
    body = assert_oauth_error(refresh(server, token, wider), "invalid_authorization_details")
    assert "refresh" in body["error_description"]
    # Refused before anything was used up.
    assert refresh(server, token).status_code == 200


def test_reuse_of_a_rotated_token_revokes_the_family(server: OAuthServer) -> None:
    first = first_grant(server, read_details("c-1"))["refresh_token"]
    second = refresh(server, first).json()["refresh_token"]
    third = refresh(server, second).json()["refresh_token"]
    assert server.introspect(third, client="demo-agent")["active"] is True

    assert_oauth_error(refresh(server, first), "invalid_grant")  # a stolen, rotated token

    assert server.introspect(third, client="demo-agent") == {"active": False}
    assert_oauth_error(refresh(server, third), "invalid_grant")
    assert_oauth_error(refresh(server, second), "invalid_grant")


def test_reuse_does_not_touch_another_family(server: OAuthServer) -> None:
    mine = first_grant(server, read_details("c-1"))["refresh_token"]
    other = first_grant(server, read_details("c-1"))["refresh_token"]
    refresh(server, other)
    assert_oauth_error(refresh(server, other), "invalid_grant")
    assert refresh(server, mine).status_code == 200


def test_client_credentials_never_gets_a_refresh_token(server: OAuthServer) -> None:
    body = server.issued(
        {"grant_type": "client_credentials", "authorization_details": rar(read_details("c-1"))}
    )
    assert "refresh_token" not in body


def test_concurrent_refreshes_with_one_token_mint_one_token(server: OAuthServer) -> None:
    token = first_grant(server, read_details("c-1"))["refresh_token"]

    def attempt(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            response = http.post(
                "/token",
                data={"grant_type": "refresh_token", "refresh_token": token},
                headers=basic_header("demo-agent"),
            )
        return response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [200, 400, 400, 400, 400, 400]
