"""The consent page: each entry in the words its profile declares, with the PDP's view for
this person and client (allowed / needs an approval, from whom / not possible); approve
gives a code, decline gives access_denied, and a decision is taken once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.front_door.helpers import (
    CALLBACK,
    FrontDoorServer,
    authorization_params,
    consent,
    form_action,
    front_door_server,
    hidden,
    payment,
    pkce_pair,
    query_of,
    read_details,
    sign_in,
    start,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("consent")) as running:
        yield running


def consent_page(
    server: FrontDoorServer, browser: httpx.Client, details: list[dict[str, object]], **extra: str
) -> tuple[str, str]:
    _, challenge = pkce_pair()
    started = start(browser, authorization_params(challenge, details=details, **extra))
    assert started.status_code == 303, started.text
    interaction = started.headers["location"]
    assert sign_in(browser, interaction, "alice").status_code == 303
    page = browser.get(interaction)
    assert page.status_code == 200
    return interaction, page.text


def items(page: str) -> list[tuple[str, str]]:
    """(words, verdict) of each listed item."""
    found = []
    for chunk in page.split("<li>")[1:]:
        words = chunk.split("<span")[0].strip()
        verdict = chunk.split('class="verdict ')[1].split('"')[0]
        found.append((words, verdict))
    return found


def test_each_entry_is_described_with_the_pdps_view_for_alice(server: FrontDoorServer) -> None:
    details = [
        *read_details("cust-0001", actions=("read", "export")),
        *payment("5000.00"),
        *payment("250000.00"),
        *payment("20.00"),
    ]
    with server.browser() as browser:
        _, page = consent_page(server, browser, details)
    assert items(page) == [
        ("Read customer record cust-0001", "allowed"),
        ("Export customer record cust-0001", "approval"),
        ("Pay 5,000.00 EUR to Merchant A", "approval"),
        ("Pay 250,000.00 EUR to Merchant A", "denied"),
        ("Pay 20.00 EUR to Merchant A", "allowed"),
    ]
    # From whom: the policy's @approval template.
    assert "Needs an approval first, from: manager." in page
    assert "Needs an approval first, from: finance." in page
    assert "Not possible" in page
    assert "Signed in as <strong>alice</strong>" in page


def test_a_scope_is_described_too(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        _, page = consent_page(
            server, browser, [], authorization_details="", scope="customer_records:read"
        )
    assert items(page) == [
        ("Read customer record (any), by scope customer_records:read", "allowed")
    ]


def test_text_from_the_client_is_escaped(server: FrontDoorServer) -> None:
    hostile = payment("20.00")
    hostile[0]["creditorName"] = "<script>alert(1)</script>"
    with server.browser() as browser:
        _, page = consent_page(server, browser, hostile)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_decline_sends_access_denied_back(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction, _ = consent_page(server, browser, read_details("cust-0001"))
        answer = consent(browser, interaction, "decline")
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    params = query_of(location)
    assert params["error"] == "access_denied" and params["iss"] == server.issuer
    assert "code" not in params and params["state"].startswith("state-")


def test_a_consent_is_answered_once(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction, page = consent_page(server, browser, read_details("cust-0001"))
        data = {"csrf_token": hidden(page, "csrf_token"), "decision": "approve"}
        first = browser.post(form_action(page), data=data)
        assert first.status_code == 303 and "code=" in first.headers["location"]
        again = browser.post(form_action(page), data=data)
        assert again.status_code == 400 and "location" not in again.headers
        assert browser.get(interaction).status_code == 400


def test_an_unknown_decision_is_refused(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction, page = consent_page(server, browser, read_details("cust-0001"))
        data = {"csrf_token": hidden(page, "csrf_token"), "decision": "maybe"}
        assert browser.post(form_action(page), data=data).status_code == 400
        # Still answerable.
        assert consent(browser, interaction).status_code == 303


def test_the_consent_page_may_send_its_form_to_the_redirect_uri_only(
    server: FrontDoorServer,
) -> None:
    with server.browser() as browser:
        interaction, _ = consent_page(server, browser, read_details("cust-0001"))
        csp = browser.get(interaction).headers["content-security-policy"]
    assert "form-action 'self' http://127.0.0.1:8765;" in csp


def test_form_post_mode_posts_the_code_back(server: FrontDoorServer) -> None:
    with server.browser() as browser:
        interaction, _ = consent_page(
            server, browser, read_details("cust-0001"), response_mode="form_post"
        )
        answer = consent(browser, interaction)
    assert answer.status_code == 200 and "location" not in answer.headers
    assert f'<form method="post" action="{CALLBACK}">' in answer.text
    assert hidden(answer.text, "iss") == server.issuer
    assert len(hidden(answer.text, "code")) >= 43
    csp = answer.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "form-action 'self' http://127.0.0.1:8765" in csp
