"""CIBA end to end over real HTTP (the real bridge, SQLite, the demo policies): an agent
asks for alice at the backchannel authentication endpoint; she signs in and answers on her
page; where the payment needs finance, finance-1 approves on the approval pages too; the
agent's poll returns the token — `sub` alice, `act` the agent, no longer than the approval.
Neither her yes nor the approvers' alone is enough, whichever comes first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.approvals.helpers import decide_on_page, signed_in
from tests.ciba.helpers import (
    AGENT,
    CIBA_GRANT,
    CibaServer,
    answer,
    approve_as_alice,
    ciba_server,
    her_page,
    message,
    request_id,
)
from tests.dtr_fixtures import parse_rfc3339, payment_details, rfc3339, unique_amount
from tests.oauth_fixtures import assert_oauth_error

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CibaServer]:
    with ciba_server(tmp_path_factory.mktemp("ciba-flow")) as running:
        yield running


def small_payment() -> list[dict[str, Any]]:
    """A payment policy permits without an approver (up to 1,000.00 EUR)."""
    return payment_details("12.50", creditor="Corner Shop")


def claims_of(server: CibaServer, token: str) -> dict[str, Any]:
    _, claims = server.dtr.oauth.verify(token)
    return claims


def test_a_request_that_needs_no_approver_is_hers_to_approve(server: CibaServer) -> None:
    words = message()
    ack = server.asked("alice", small_payment(), binding_message=words)
    waiting = server.poll(ack.auth_req_id)
    assert_oauth_error(waiting, "authorization_pending")

    with server.signed_in("alice") as browser:
        path, page = her_page(browser, words)
        assert "Pay 12.50 EUR to Corner Shop" in page
        assert "Waiting for your answer." in page
        done = answer(browser, path, "approve")
        assert done.status_code == 303 and done.headers["location"] == path + "?done=approve"
        after = browser.get(done.headers["location"]).text
        assert "You approved." in after and 'id="decide"' not in after

    token = server.poll_until_settled(ack)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["authorization_details"] == small_payment()
    assert "refresh_token" not in body and "id_token" not in body
    claims = claims_of(server, body["access_token"])
    assert claims["sub"] == "alice"
    assert claims["act"] == {"sub": AGENT}
    assert claims["client_id"] == AGENT
    assert "scope" not in claims  # `openid` is never decided, never granted
    # Spent once: the same auth_req_id again is no grant any more.
    again = server.poll(ack.auth_req_id)
    assert_oauth_error(again, "invalid_grant")


def test_a_payment_that_needs_finance_needs_her_and_finance(server: CibaServer) -> None:
    amount, cents = unique_amount()
    words = message()
    ack = server.asked("alice", payment_details(amount), binding_message=words)
    # Filed for finance, bound to the auth_req_id (the client never sees the access request).
    task = server.dtr.find_request("finance-1", cents)
    assert task["subject"]["id"] == "alice"
    assert task["subject"]["properties"]["act"] == {"sub": AGENT}

    approve_as_alice(server, words)
    server.outbox_done("ciba_decided", request_id(server, words))
    waiting = server.poll(ack.auth_req_id)
    assert_oauth_error(waiting, "authorization_pending")  # finance has not answered

    with signed_in(server.dtr, "finance-1") as finance:
        decided = decide_on_page(finance, task["id"], approve_for="3600")
        assert decided.status_code == 303, decided.text
    [item] = server.dtr.view("finance-1", task["id"])["items"]
    approved_until = parse_rfc3339(item["result"]["approval"]["approved_until"])
    assert approved_until <= time.time() + 3600

    token = server.poll_until_settled(ack)
    assert token.status_code == 200, token.text
    body = token.json()
    claims = claims_of(server, body["access_token"])
    assert (claims["sub"], claims["act"]) == ("alice", {"sub": AGENT})
    assert claims["exp"] <= approved_until
    assert body["expires_in"] <= approved_until - time.time() + 1
    assert body["authorization_details"] == payment_details(amount)


def test_the_approvers_alone_cannot_finish_it_without_her(server: CibaServer) -> None:
    amount, cents = unique_amount()
    words = message()
    ack = server.asked("alice", payment_details(amount), binding_message=words)
    task = server.dtr.find_request("finance-1", cents)
    # Two minutes: shorter than the token's usual ten, so the approval is what ends it.
    until = int(time.time()) + 120
    server.dtr.approve("finance-1", task["id"], approved_until=rfc3339(until))
    server.outbox_done("task_terminal", task["id"].encode())
    waiting = server.poll(ack.auth_req_id)
    assert_oauth_error(waiting, "authorization_pending")

    approve_as_alice(server, words)  # she comes last: her answer settles it
    token = server.poll_until_settled(ack)
    assert token.status_code == 200, token.text
    body = token.json()
    claims = claims_of(server, body["access_token"])
    assert claims["sub"] == "alice"
    assert claims["exp"] <= until and body["expires_in"] <= 120


def test_her_decline_ends_it_and_the_access_request(server: CibaServer) -> None:
    amount, cents = unique_amount()
    words = message()
    ack = server.asked("alice", payment_details(amount), binding_message=words)
    task = server.dtr.find_request("finance-1", cents)
    with server.signed_in("alice") as browser:
        path, _ = her_page(browser, words)
        declined = answer(browser, path, "decline")
        assert declined.headers["location"] == path + "?done=decline"
        assert "You declined." in browser.get(declined.headers["location"]).text
        # Answered is answered.
        again = answer(browser, path, "approve")
        assert again.status_code == 409
    denied = server.poll_until_settled(ack)
    assert_oauth_error(denied, "access_denied")
    server.outbox_done("ciba_decided", request_id(server, words))
    # Nobody waits on the access request any more: cancelled, gone from the inbox.
    assert server.dtr.requests_about("finance-1", cents) == []
    assert server.dtr.view("finance-1", task["id"])["status"] == "cancelled"


def test_a_denial_by_the_approvers_ends_it_although_she_approved(server: CibaServer) -> None:
    amount, cents = unique_amount()
    words = message()
    ack = server.asked("alice", payment_details(amount), binding_message=words)
    approve_as_alice(server, words)
    task = server.dtr.find_request("finance-1", cents)
    denied = server.dtr.decide("finance-1", task["id"], "deny")
    assert denied.status_code == 200, denied.text
    answer_ = server.poll_until_settled(ack)
    assert_oauth_error(answer_, "access_denied")


def test_a_plain_denial_is_refused_at_the_endpoint(server: CibaServer) -> None:
    # Above 100,000.00 EUR nothing permits a payment: no approval could change that.
    refused = server.ask("alice", payment_details("250000.00"))
    body = assert_oauth_error(refused, "invalid_authorization_details")
    assert "authorization_pending" not in str(body) and "auth_req_id" not in body


def test_the_grant_is_advertised(server: CibaServer) -> None:
    metadata = server.http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["backchannel_authentication_endpoint"] == "https://bridge.test/bc-authorize"
    assert metadata["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert metadata["backchannel_user_code_parameter_supported"] is False
    assert CIBA_GRANT in metadata["grant_types_supported"]
