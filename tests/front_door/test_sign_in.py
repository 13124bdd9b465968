"""Sign-in with local accounts and the session it makes: one generic error, throttling per
account and per address that holds across replicas, CSRF on every form, the session id
rotated at sign-in (fixation), cookie flags, interactions bound to their browser, sign-out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.front_door.helpers import (
    FrontDoorServer,
    authorization_params,
    form_action,
    front_door_server,
    hidden,
    pkce_pair,
    sign_in,
    start,
)

THROTTLE = """
[front_door]
max_failures_per_account = 3
max_failures_per_address = 50
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("sign-in"), extra=THROTTLE) as running:
        yield running


def begin(server: FrontDoorServer, browser: httpx.Client) -> str:
    _, challenge = pkce_pair()
    started = start(browser, authorization_params(challenge))
    assert started.status_code == 303
    location: str = started.headers["location"]
    return location


def test_the_sign_in_form_has_labels_and_the_expected_autocomplete(
    server: FrontDoorServer,
) -> None:
    with server.browser() as browser:
        page = browser.get(begin(server, browser)).text
    assert 'name="username"' in page and 'autocomplete="username"' in page
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    assert '<label for="username">' in page and '<label for="password">' in page
    assert 'type="password"' in page


def test_unknown_user_and_wrong_password_get_the_same_answer(server: FrontDoorServer) -> None:
    answers = []
    for username, password in [("nobody-here", "demo-alice"), ("finance-1", "wrong-password")]:
        with server.browser() as browser:
            response = sign_in(browser, begin(server, browser), username, password)
        assert response.status_code == 401
        answers.append(response.text.split('id="sign-in-error">')[1].split("<")[0])
    assert answers[0] == answers[1] == "The user name or the password is not right."


def test_a_good_password_signs_in_and_shows_consent(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        response = sign_in(browser, interaction, "alice")
        assert response.status_code == 303 and response.headers["location"] == interaction
        assert "Allow demo-web to act for you?" in browser.get(interaction).text


def test_failures_per_account_are_throttled_across_replicas(
    server: FrontDoorServer, tmp_path: Path
) -> None:
    # A second replica on the same database: failures at either count for both.
    with front_door_server(server.folder, extra=THROTTLE) as replica:
        for target in (server, replica, server):
            with target.browser() as browser:
                assert (
                    sign_in(browser, begin(target, browser), "manager-1", "guess").status_code
                    == 401
                )
        with replica.browser() as browser:
            refused = sign_in(browser, begin(replica, browser), "manager-1")
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
        assert "Allow" not in refused.text


def test_failures_per_address_are_throttled(tmp_path: Path) -> None:
    extra = "[front_door]\nmax_failures_per_account = 50\nmax_failures_per_address = 2\n"
    with front_door_server(tmp_path, extra=extra) as server:
        for name in ("someone-1", "someone-2"):
            with server.browser() as browser:
                assert sign_in(browser, begin(server, browser), name, "guess").status_code == 401
        with server.browser() as browser:
            assert sign_in(browser, begin(server, browser), "alice").status_code == 429


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_form_without_its_csrf_token_is_refused(
    server: FrontDoorServer, token: str | None
) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        page = browser.get(interaction).text
        data = {"username": "alice", "password": "demo-alice"}
        if token is not None:
            data["csrf_token"] = token
        response = browser.post(form_action(page), data=data)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        # Still not signed in.
        assert 'name="password"' in browser.get(interaction).text


def test_the_consent_form_needs_its_csrf_token(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        sign_in(browser, interaction, "alice")
        page = browser.get(interaction).text
        response = browser.post(form_action(page), data={"decision": "approve"})
        assert response.status_code == 403 and "location" not in response.headers


def test_sign_in_rotates_the_session_and_a_planted_cookie_stays_signed_out(
    server: FrontDoorServer,
) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        planted = dict(browser.cookies)
        before = browser.get(interaction).text
        sign_in(browser, interaction, "alice")
        after = dict(browser.cookies)
        assert planted != after
        # The CSRF token came from the old session id: the signed-in pages have a new one.
        assert hidden(before, "csrf_token") != hidden(browser.get(interaction).text, "csrf_token")
    # Whoever kept the cookie from before sign-in (an attacker who planted it) is not in.
    with httpx.Client(base_url=server.url, cookies=planted) as attacker:
        page = attacker.get(interaction).text
        assert 'name="password"' in page and "Allow" not in page


def test_the_cookie_is_httponly_lax_and_not_secure_over_http(server: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    with server.browser() as browser:
        cookie = start(browser, authorization_params(challenge)).headers["set-cookie"]
    assert cookie.startswith("bridge_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie and "Max-Age=" in cookie


def test_a_sign_in_lasts_the_session_lifetime_at_most(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        cookie = sign_in(browser, interaction, "alice").headers["set-cookie"]
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age <= 3600  # front_door.session_lifetime_seconds, from sign-in


def test_over_https_the_cookie_is_secure_with_the_host_prefix(tmp_path: Path) -> None:
    with front_door_server(tmp_path, public_url="https://bridge.test") as server:
        _, challenge = pkce_pair()
        with server.browser() as browser:
            cookie = start(browser, authorization_params(challenge)).headers["set-cookie"]
    assert cookie.startswith("__Host-bridge_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie


def test_an_interaction_belongs_to_the_browser_that_started_it(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
    with server.browser() as other:
        begin(server, other)  # a session of its own
        page = other.get(interaction)
        assert page.status_code == 400 and "another browser" in page.text
    with server.browser() as none:
        assert none.get(interaction).status_code == 400


def test_a_tampered_cookie_is_no_session(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        sign_in(browser, interaction, "alice")
        name, value = next(iter(browser.cookies.items()))
        body, mac = value.rsplit(".", 1)
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    with httpx.Client(base_url=server.url, cookies={name: forged}) as forger:
        assert forger.get(interaction).status_code == 400


def test_sign_out_ends_the_session(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction = begin(server, browser)
        sign_in(browser, interaction, "alice")
        page = browser.get(interaction).text
        token = hidden(page, "csrf_token")
        assert browser.post("/sign-out", data={"csrf_token": "forged"}).status_code == 403
        out = browser.post("/sign-out", data={"csrf_token": token})
        assert out.status_code == 200 and "Signed out" in out.text
        assert (
            'bridge_session=""' in out.headers["set-cookie"]
            or "Max-Age=0" in out.headers["set-cookie"]
        )
        assert browser.get("/signed-in").status_code == 401


def test_sign_out_ends_a_copy_of_the_cookie_at_every_replica(server: FrontDoorServer) -> None:
    with front_door_server(server.folder, extra=THROTTLE) as replica, server.browser() as browser:
        interaction = begin(server, browser)
        sign_in(browser, interaction, "alice")
        copied = dict(browser.cookies)
        token = hidden(browser.get(interaction).text, "csrf_token")
        assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 200
        # Whoever kept a copy of the signed-in cookie is signed out too, at either replica.
        for target in (server, replica):
            with httpx.Client(base_url=target.url, cookies=copied) as thief:
                assert thief.get("/signed-in").status_code == 401
                page = thief.get(interaction).text
                assert 'name="password"' in page and "Allow" not in page


def test_sign_in_continues_the_interaction_it_was_made_for(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        first = begin(server, browser)
        second = begin(server, browser)  # another tab, started later
        response = sign_in(browser, first, "alice")
        assert response.headers["location"] == first != second


def test_no_secret_appears_in_a_url(server: FrontDoorServer) -> None:
    """The password travels in a POST body; the pages' URLs carry only the interaction id,
    which is worthless without the browser's cookie (see the test above)."""
    with server.browser() as browser:
        interaction = begin(server, browser)
        response = sign_in(browser, interaction, "alice")
        for hop in [*response.history, response]:
            assert "demo-alice" not in str(hop.request.url)
            assert "demo-alice" not in hop.headers.get("location", "")
