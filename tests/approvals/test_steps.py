"""Multi-step and quorum approvals over real HTTP: the demo store's two-step template
(a manager, then the data-protection officer), a quorum of two, one person per step, the
narrowest `approved_until` of all approvers, and escalation of a step that waits too long.

The approvers act through the approver API (bearer tokens of the demo approver issuer);
the approval pages call the same service (tests/approvals/test_pages*.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.approvals.helpers import (
    SENSITIVE_RECORD,
    approvals_server,
    assert_error_page,
    demo_policies,
    events,
    export_for,
    pages_server,
    person,
    post_page,
    request_of,
    signed_in,
)
from tests.dtr_fixtures import DTRServer, assert_problem, payment_details
from tests.oauth_fixtures import exchange_form, idp_token

# The test store: the manager may take either step of a sensitive export (one person still
# takes only one), and finance needs two people, finance-1 and manager-1.
EXTRA_POLICIES = """
// Tests: the manager may take either step of a sensitive export.
@id("test-manager-takes-any-sensitive-step")
permit (
  principal == user::"manager-1",
  action == Action::"approve",
  resource is AccessRequest
)
when { resource.template == "sensitive-export" };

// Tests: the manager is the second finance approver.
@id("test-manager-approves-payments")
permit (
  principal == user::"manager-1",
  action == Action::"approve",
  resource is AccessRequest
)
when { resource.template == "finance" };
"""
QUORUM = """
[templates.finance]
description = "Two people approve a payment."

[[templates.finance.steps]]
name = "finance"
approvals = 2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with approvals_server(tmp_path_factory.mktemp("steps")) as running:
        yield running


@pytest.fixture(scope="module")
def test_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("steps-quorum")
    store = demo_policies(folder, policies=EXTRA_POLICIES)
    text = (store / "approvals.toml").read_text(encoding="utf-8")
    # The demo's finance template gives way to the quorum (one table per template).
    head, _, tail = text.partition("[templates.finance]")
    (store / "approvals.toml").write_text(
        head + tail.split("\n\n", 1)[1] + QUORUM, encoding="utf-8"
    )
    # With the front door too: people approve on the pages as well as with tokens.
    with pages_server(folder, store) as running:
        yield running


def test_a_sensitive_export_takes_a_manager_then_data_protection(server: DTRServer) -> None:
    who = person()
    deferral = server.defer(export_for(who, SENSITIVE_RECORD))
    assert request_of(server, "dpo-1", who) is None, "not the data-protection step yet"
    task = request_of(server, "manager-1", who)
    assert task is not None
    assert task["progress"][0] == {
        "current_step": 1,
        "total_steps": 2,
        "step_name": "manager",
        "awaiting": ["manager"],
    }
    assert task["templates"]["sensitive-export"]["steps"] == ["manager", "data-protection"]
    assert_problem(server.decide("dpo-1", task["id"], "approve"), 403)

    after = server.approve("manager-1", task["id"])
    assert after["status"] == "pending"
    assert after["progress"][0]["current_step"] == 2
    assert after["progress"][0]["step_name"] == "data-protection"
    assert server.poll(deferral.code).json()["error"] == "authorization_pending"
    assert request_of(server, "manager-1", who) is None, "the manager's step is done"

    second = request_of(server, "dpo-1", who)
    assert second is not None and second["id"] == task["id"]
    assert server.approve("dpo-1", task["id"])["status"] == "approved"
    token = server.poll_until_settled(deferral)
    assert token.status_code == 200, token.text
    assert events(server, task["id"])[:3] == ["filed", "step_approved", "approved"]


def test_a_denial_at_the_second_step_ends_the_request(server: DTRServer) -> None:
    who = person()
    deferral = server.defer(export_for(who, SENSITIVE_RECORD))
    task = request_of(server, "manager-1", who)
    assert task is not None
    server.approve("manager-1", task["id"])
    denied = server.decide("dpo-1", task["id"], "deny", justification="not for this purpose")
    assert denied.status_code == 200, denied.text
    assert denied.json()["access_request"]["status"] == "denied"
    assert server.poll_until_settled(deferral).json()["error"] == "access_denied"


def test_the_earliest_approved_until_of_all_approvers_holds(server: DTRServer) -> None:
    who = person()
    deferral = server.defer(export_for(who, SENSITIVE_RECORD))
    task = request_of(server, "manager-1", who)
    assert task is not None
    short = int(time.time()) + 600
    server.approve("manager-1", task["id"], approved_until=_rfc3339(short))
    done = server.approve("dpo-1", task["id"])  # no end of their own: the usual hour
    until = done["items"][0]["result"]["approval"]["approved_until"]
    assert until == _rfc3339(short)
    token = server.poll_until_settled(deferral).json()
    assert token["expires_in"] <= 600


def test_one_person_takes_one_step_even_where_policy_allows_both(test_store: DTRServer) -> None:
    who = person()
    test_store.defer(export_for(who, SENSITIVE_RECORD))
    task = request_of(test_store, "manager-1", who)
    assert task is not None
    test_store.approve("manager-1", task["id"])
    assert request_of(test_store, "manager-1", who) is None, "nothing left for the manager"
    again = test_store.decide("manager-1", task["id"], "approve")
    assert "approved this access request already" in assert_problem(again, 403)["detail"]
    assert test_store.approve("dpo-1", task["id"])["status"] == "approved"


def test_one_person_is_one_person_on_the_pages_and_with_a_token(test_store: DTRServer) -> None:
    who = person()
    test_store.defer(export_for(who, SENSITIVE_RECORD))
    task = request_of(test_store, "manager-1", who)
    assert task is not None
    test_store.approve("manager-1", task["id"])  # with an approver token
    with signed_in(test_store, "manager-1") as browser:  # and again, signed in on the pages
        page = browser.get(f"/approvals/{task['id']}").text
        assert 'id="decide"' not in page, "nothing left for manager-1 to decide"
        answer = post_page(browser, f"/approvals/{task['id']}/decision", decision="approve")
    assert_error_page(answer, 403, "approved this access request already")


def test_a_quorum_needs_two_different_people(test_store: DTRServer) -> None:
    who = person()
    form = exchange_form(payment_details("5000.00"), subject_token=idp_token(who))
    deferral = test_store.defer(form)
    task = request_of(test_store, "finance-1", who)
    assert task is not None
    first = test_store.approve("finance-1", task["id"])
    assert first["status"] == "pending"
    assert first["progress"][0] == {
        "current_step": 1,
        "total_steps": 1,
        "step_name": "finance",
        "awaiting": ["finance"],
    }
    assert_problem(test_store.decide("finance-1", task["id"], "approve"), 403)
    assert test_store.poll(deferral.code).json()["error"] == "authorization_pending"
    assert test_store.approve("manager-1", task["id"])["status"] == "approved"
    assert test_store.poll_until_settled(deferral).status_code == 200


def test_a_step_waiting_past_its_timeout_is_escalated_once(server: DTRServer) -> None:
    who = person()
    server.defer(export_for(who, SENSITIVE_RECORD))
    task = request_of(server, "manager-1", who)
    assert task is not None
    service = server.oauth.thread.app.state.access_requests.service
    real_clock = service.clock
    # An hour and a bit later (the demo step's timeout is an hour; requests live three).
    service.clock = lambda: real_clock() + 3_700
    try:
        deadline = time.monotonic() + 20
        while "escalated" not in events(server, task["id"]):
            assert time.monotonic() < deadline, "the step was never escalated"
            time.sleep(0.5)
        time.sleep(6)  # another housekeeping pass: it must not escalate again
    finally:
        service.clock = real_clock
    assert events(server, task["id"]).count("escalated") == 1
    still = request_of(server, "manager-1", who)
    assert still is not None and still["status"] == "pending"


def _rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
