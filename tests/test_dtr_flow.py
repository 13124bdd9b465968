"""Deferred approvals end to end, over real HTTP: a token request the demo policies allow
only with an approval is deferred (DTR), filed as an access request (ARAP), decided by the
demo approvers through the approver API, and then redeemed, refused, expired, cancelled or
pinged, as shared/specs/dtr.md and shared/specs/access-request-oauth-profile.md say.

The real bridge (uvicorn on loopback, SQLite, Cedar with policies/default); approvers are
`manager-1` (exports of customer records) and `finance-1` (EUR payments of 1,000.01 to
100,000.00). Deferral settings: `interval_seconds = 1`, codes live 60 s (2 s on the server
of the expiry test).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dtr_fixtures import (
    ARAP_ERROR,
    DEFERRAL_CODE_TYPE,
    DEFERRED_GRANT,
    PING_AGENT,
    PING_PATH,
    Deferral,
    DTRServer,
    PingListener,
    assert_deferred,
    assert_problem,
    dtr_server,
    export_details,
    notification_token,
    parse_rfc3339,
    payment_details,
    rfc3339,
    unique_amount,
    unique_record,
)
from tests.oauth_fixtures import (
    ACCESS_TOKEN_TYPE,
    assert_oauth_error,
    exchange_form,
    read_details,
)

DEFERRAL = {"interval_seconds": 1, "code_lifetime_seconds": 60}
TOKEN_LIFETIME = 600  # oauth.access_token_lifetime_seconds, the default


@pytest.fixture(scope="module")
def listener() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, listener: PingListener) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("dtr-flow")
    with dtr_server(folder, deferral=DEFERRAL, ping_endpoint=listener.url) as running:
        yield running


def defer_export(
    server: DTRServer, record: str, *, client: str = "demo-agent", **extra: str
) -> Deferral:
    return server.defer({**exchange_form(export_details(record)), **extra}, client=client)


def approved_until_of(view: dict[str, Any], item: int = 0) -> float:
    return parse_rfc3339(view["items"][item]["result"]["approval"]["approved_until"])


# -- discovery ---------------------------------------------------------------------------


def test_metadata_advertises_deferred_responses_and_their_cancellation(
    server: DTRServer,
) -> None:
    response = server.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["deferred_token_response_supported"] is True
    assert DEFERRED_GRANT in metadata["grant_types_supported"]
    assert DEFERRAL_CODE_TYPE in metadata["revocation_endpoint_token_type_values_supported"]
    # Only the optional direct-deferral extension would publish this (dtr.md §12, PR #47).
    assert "deferred_authorization_endpoint_supported" not in metadata


# -- deferred, approved, redeemed once ---------------------------------------------------


def test_approved_request_is_redeemed_once_for_exactly_what_was_asked(
    server: DTRServer,
) -> None:
    # Control: the same client and grant get a refresh token when nothing is deferred.
    synchronous = server.oauth.issued(exchange_form(read_details(unique_record())))
    assert "refresh_token" in synchronous

    record = unique_record()
    details = export_details(record)
    response = server.token({**exchange_form(details), "completion_mode": "deferred"})
    body = assert_deferred(response)
    assert response.headers["content-type"].startswith("application/json")
    assert set(body) == {"error", "deferral_code", "expires_in", "interval"}
    assert body["interval"] == 1
    assert 0 < body["expires_in"] <= 60
    code = body["deferral_code"]

    # Still pending: neither the code nor the interval is repeated.
    pending = assert_oauth_error(server.poll(code), "authorization_pending")
    assert "deferral_code" not in pending
    assert "interval" not in pending

    # The manager sees the request (and finance does not); nothing about it reached the client.
    request = server.find_request("manager-1", record)
    assert request["status"] == "pending"
    assert request["actionable_items"] == [0]
    assert request["subject"]["id"] == "alice@example.com"
    assert [item["template"] for item in request["items"]] == ["manager"]
    assert server.requests_about("finance-1", record) == []
    assert request["id"] not in json.dumps(body)

    # Approved until three minutes from now: less than the 600 s token lifetime.
    until = rfc3339(time.time() + 180)
    view = server.approve("manager-1", request["id"], approved_until=until)
    assert view["status"] == "approved"
    approved_until = approved_until_of(view)
    assert approved_until == parse_rfc3339(until)

    redeemed = server.poll_until_settled(Deferral(code, body["expires_in"], body["interval"]))
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.headers["cache-control"] == "no-store"
    token = redeemed.json()
    assert token["authorization_details"] == details
    assert token["token_type"] == "Bearer"
    assert token["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert "refresh_token" not in token  # the approval bounds the whole credential
    assert 0 < token["expires_in"] <= approved_until - time.time() + 2

    _, claims = server.oauth.verify(token["access_token"])
    assert claims["authorization_details"] == details
    assert claims["sub"] == "alice@example.com"
    assert claims["client_id"] == "demo-agent"
    assert claims["exp"] <= approved_until
    assert claims["exp"] < claims["iat"] + TOKEN_LIFETIME  # capped, not the usual lifetime
    assert "cnf" not in claims

    # The code is spent.
    again = assert_oauth_error(server.poll(code), "invalid_grant")
    assert "access_token" not in again


def test_denied_request_answers_access_denied_for_good(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    request = server.find_request("manager-1", record)
    response = server.decide("manager-1", request["id"], "deny", justification="no export")
    assert response.status_code == 200, response.text
    assert response.json()["access_request"]["status"] == "denied"

    settled = server.poll_until_settled(deferral)
    body = assert_oauth_error(settled, "access_denied")
    assert "manager" not in json.dumps(body)  # no approver or workflow detail
    time.sleep(deferral.interval)
    assert_oauth_error(server.poll(deferral.code), "access_denied")


def test_expired_code_answers_expired_token_and_withdraws_the_request(
    tmp_path: Path,
) -> None:
    with dtr_server(tmp_path, deferral=DEFERRAL, code_lifetime=2) as server:
        record = unique_record()
        deferral = defer_export(server, record)
        assert deferral.expires_in <= 2
        request = server.find_request("manager-1", record)
        assert_oauth_error(server.poll(deferral.code), "authorization_pending")

        time.sleep(deferral.expires_in + 0.5)
        assert_oauth_error(server.poll(deferral.code), "expired_token")
        # AROP §4: an expired code cancels its access request, which can no longer be approved.
        late = server.decide("manager-1", request["id"], "approve")
        assert_problem(late, 409, ARAP_ERROR + "invalid_task_state")
        assert server.view("manager-1", request["id"])["status"] == "cancelled"
        time.sleep(deferral.interval)
        assert_oauth_error(server.poll(deferral.code), "expired_token")


# -- cancellation ------------------------------------------------------------------------


def test_revoking_the_code_cancels_the_deferral_and_its_access_request(
    server: DTRServer,
) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    request = server.find_request("manager-1", record)

    revoked = server.revoke_code(deferral.code)
    assert revoked.status_code == 200, revoked.text
    assert revoked.headers["cache-control"] == "no-store"

    assert_oauth_error(server.poll(deferral.code), "access_denied")
    assert server.view("manager-1", request["id"])["status"] == "cancelled"
    late = server.decide("manager-1", request["id"], "approve")
    assert_problem(late, 409, ARAP_ERROR + "invalid_task_state")
    assert server.requests_about("manager-1", record) == []

    # Idempotent, and the code stays refused.
    assert server.revoke_code(deferral.code).status_code == 200
    time.sleep(deferral.interval)
    assert_oauth_error(server.poll(deferral.code), "access_denied")


def test_revoking_an_approved_code_before_redemption_means_no_token(
    server: DTRServer,
) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    request = server.find_request("manager-1", record)
    server.approve("manager-1", request["id"])
    time.sleep(1.0)  # the approval is settled on the deferral (outbox) meanwhile

    assert server.revoke_code(deferral.code).status_code == 200
    response = server.poll(deferral.code)
    assert_oauth_error(response, "access_denied")


# -- bundles -----------------------------------------------------------------------------


def test_bundle_with_one_item_approved_and_one_denied_ends_partial_and_access_denied(
    server: DTRServer,
) -> None:
    record = unique_record()
    details = export_details(record) + payment_details("5000.00")
    deferral = server.defer(exchange_form(details))

    request = server.find_request("manager-1", record)
    templates = [item["template"] for item in request["items"]]
    assert sorted(templates) == ["finance", "manager"]
    manager_item, finance_item = templates.index("manager"), templates.index("finance")
    assert request["actionable_items"] == [manager_item]
    assert server.find_request("finance-1", record)["actionable_items"] == [finance_item]

    # Finance may not decide the manager's item, nor the manager finance's.
    refused = server.decide("finance-1", request["id"], "approve", items=[manager_item])
    assert_problem(refused, 403)
    refused = server.decide("manager-1", request["id"], "deny", items=[finance_item])
    assert_problem(refused, 403)

    half = server.approve("manager-1", request["id"], items=[manager_item])
    assert half["status"] == "pending"
    time.sleep(1.0)
    # One approval of two is not an approval.
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")

    response = server.decide("finance-1", request["id"], "deny", items=[finance_item])
    assert response.status_code == 200, response.text
    view = server.view("manager-1", request["id"])
    assert view["status"] == "partial"
    assert view["items"][manager_item]["status"] == "approved"
    assert view["items"][finance_item]["status"] == "denied"

    settled = server.poll_until_settled(deferral)
    assert_oauth_error(settled, "access_denied")


# -- what is never deferred --------------------------------------------------------------


def test_requestable_denial_without_opt_in_is_refused_at_once(server: DTRServer) -> None:
    record = unique_record()
    details = export_details(record) + payment_details("5000.00")
    response = server.token(exchange_form(details))
    body = assert_oauth_error(response, "invalid_authorization_details")
    assert "deferral_code" not in body
    assert "completion_mode" in body.get("error_description", "")

    # Unknown completion modes are ignored: without `deferred` there is no opt-in.
    response = server.token({**exchange_form(details), "completion_mode": "deferred_interactive"})
    body = assert_oauth_error(response, "invalid_authorization_details")
    assert "deferral_code" not in body

    # Nothing was filed for approvers.
    assert server.requests_about("manager-1", record) == []


def test_payment_above_the_finance_limit_is_refused_outright(server: DTRServer) -> None:
    response = server.token(
        {**exchange_form(payment_details("150000.00")), "completion_mode": "deferred"}
    )
    body = assert_oauth_error(response, "invalid_authorization_details")
    assert "deferral_code" not in body
    assert "completion_mode" not in body.get("error_description", "")
    assert server.requests_about("finance-1", 15_000_000) == []


# -- pings -------------------------------------------------------------------------------


def ping_deferral(server: DTRServer, amount: str, token: str) -> Deferral:
    """ping-agent is no demo client of customer records: it asks for a payment."""
    form = {**exchange_form(payment_details(amount)), "client_notification_token": token}
    return server.defer(form, client=PING_AGENT)


def assert_ping(delivery: Any, code: str, token: str) -> None:
    assert delivery.method == "POST"
    assert delivery.path == PING_PATH  # neither the code nor the token in the URL
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers["authorization"] == f"Bearer {token}"
    assert delivery.json() == {"deferral_code": code}


def test_ping_is_sent_once_when_the_request_is_approved(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset()
    (amount, cents), token = unique_amount(), notification_token()
    deferral = ping_deferral(server, amount, token)
    assert_oauth_error(server.poll(deferral.code, client=PING_AGENT), "authorization_pending")
    time.sleep(1.0)
    assert listener.for_code(deferral.code) == []  # nothing to tell before a decision

    request = server.find_request("finance-1", cents)
    server.approve("finance-1", request["id"])
    [delivery] = listener.wait_for(deferral.code, 1)
    assert_ping(delivery, deferral.code, token)

    time.sleep(1.5)
    assert len(listener.for_code(deferral.code)) == 1
    assert len(listener.deliveries) == 1
    redeemed = server.poll(deferral.code, client=PING_AGENT)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["authorization_details"] == payment_details(amount)


def test_ping_is_retried_after_a_server_error_and_then_delivered_once(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset(500, 204)
    (amount, cents), token = unique_amount(), notification_token()
    deferral = ping_deferral(server, amount, token)
    request = server.find_request("finance-1", cents)
    server.approve("finance-1", request["id"])

    first, second = listener.wait_for(deferral.code, 2)
    assert_ping(first, deferral.code, token)
    assert_ping(second, deferral.code, token)
    assert second.at > first.at

    time.sleep(2.0)  # a delivered ping is not sent again
    assert len(listener.for_code(deferral.code)) == 2
    redeemed = server.poll(deferral.code, client=PING_AGENT)
    assert redeemed.status_code == 200, redeemed.text


def test_ping_tells_of_a_denial_too_and_the_poll_says_access_denied(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset()
    (amount, cents), token = unique_amount(), notification_token()
    deferral = ping_deferral(server, amount, token)
    request = server.find_request("finance-1", cents)
    response = server.decide("finance-1", request["id"], "deny")
    assert response.status_code == 200, response.text

    [delivery] = listener.wait_for(deferral.code, 1)
    assert_ping(delivery, deferral.code, token)
    assert_oauth_error(server.poll(deferral.code, client=PING_AGENT), "access_denied")


def test_no_ping_for_a_code_revoked_before_its_ping_was_sent(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset()
    (amount, cents), token = unique_amount(), notification_token()
    deferral = ping_deferral(server, amount, token)
    request = server.find_request("finance-1", cents)
    server.approve("finance-1", request["id"])
    # Within the ping delay (0.5 s): the ping has not started, and now never will.
    assert server.revoke_code(deferral.code, client=PING_AGENT).status_code == 200

    time.sleep(1.5)
    assert listener.for_code(deferral.code) == []
    assert_oauth_error(server.poll(deferral.code, client=PING_AGENT), "access_denied")
