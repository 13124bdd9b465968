"""The polling rules of the deferred grant over real HTTP (shared/specs/dtr.md §4.3 and the
bridge's deterministic reading of them, docs/deferred-tokens.md "Pace").

Server settings: `interval_seconds = 1`, `slow_down_seconds = 5` (the minimum),
`poll_tolerance_seconds = 0.5` (so that a poll faster than the 1 s interval is too fast),
`max_slow_downs = 3`. Each test files its own export of a customer record by demo-agent
(client credentials), which the demo policies defer for a manager's approval.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.dtr_fixtures import (
    DEFERRED_GRANT,
    Deferral,
    DTRServer,
    dtr_server,
    export_details,
    unique_record,
)
from tests.oauth_fixtures import assert_oauth_error, rar

DEFERRAL = {
    "interval_seconds": 1,
    "slow_down_seconds": 5,
    "poll_tolerance_seconds": 0.5,
    "max_slow_downs": 3,
    "code_lifetime_seconds": 60,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with dtr_server(tmp_path_factory.mktemp("dtr-polling"), deferral=DEFERRAL) as running:
        yield running


def defer_export(server: DTRServer, record: str | None = None) -> Deferral:
    form = {
        "grant_type": "client_credentials",
        "authorization_details": rar(export_details(record or unique_record())),
    }
    deferral = server.defer(form)
    assert deferral.interval == 1
    return deferral


def test_first_poll_right_after_the_deferred_response_is_never_slow_down(
    server: DTRServer,
) -> None:
    deferral = defer_export(server)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")


def test_a_poll_faster_than_the_interval_is_answered_slow_down(server: DTRServer) -> None:
    deferral = defer_export(server)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")
    body = assert_oauth_error(server.poll(deferral.code), "slow_down")
    assert "deferral_code" not in body
    assert "interval" not in body  # the interval is sent only with the deferred response


def test_after_slow_down_the_required_gap_grows_by_five_seconds(server: DTRServer) -> None:
    deferral = defer_export(server)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")
    assert_oauth_error(server.poll(deferral.code), "slow_down")
    # Twice the advertised interval later: enough before, too early now (1 + 5 s needed).
    time.sleep(2.0)
    assert_oauth_error(server.poll(deferral.code), "slow_down")


def test_polling_at_exactly_the_advertised_interval_is_never_slowed_down(
    server: DTRServer,
) -> None:
    deferral = defer_export(server)
    start = time.monotonic()
    for n in range(8):
        delay = start + n * deferral.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = server.poll(deferral.code)
        assert_oauth_error(response, "authorization_pending")
    # The throttle is on all along: one poll too early is slowed down.
    assert_oauth_error(server.poll(deferral.code), "slow_down")


def test_an_approved_code_is_answered_on_any_poll_even_an_early_one(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")
    assert_oauth_error(server.poll(deferral.code), "slow_down")  # now 6 s are required

    request = server.find_request("manager-1", record)
    server.approve("manager-1", request["id"])
    time.sleep(1.5)  # the approval reaches the deferral (outbox) meanwhile

    response = server.poll(deferral.code)  # 1.5 s after a poll, with 6 s required
    assert response.status_code == 200, response.text
    assert response.json()["authorization_details"] == export_details(record)


def test_persistent_over_polling_escalates_to_invalid_request(server: DTRServer) -> None:
    deferral = defer_export(server)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")
    for _ in range(3):  # max_slow_downs
        assert_oauth_error(server.poll(deferral.code), "slow_down")
    assert_oauth_error(server.poll(deferral.code), "invalid_request")


def test_a_poll_cannot_change_the_original_request(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    poll = {"grant_type": DEFERRED_GRANT, "deferral_code": deferral.code}
    changes = {
        "authorization_details": rar(export_details(unique_record())),
        "scope": "customer_records:read",
        "completion_mode": "deferred",
    }
    for name, value in changes.items():
        response = server.token({**poll, name: value})
        body = assert_oauth_error(response, "invalid_request")
        assert name in body.get("error_description", ""), body

    # Those were no polls: the first real one is not too fast, and the request is unchanged.
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")
    request = server.find_request("manager-1", record)
    assert [item["resource"]["id"] for item in request["items"]] == [record]
    server.approve("manager-1", request["id"])
    redeemed = server.poll_until_settled(deferral)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["authorization_details"] == export_details(record)
