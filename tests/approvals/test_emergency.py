"""Emergency requests (ARAP `requested_access.emergency`): where the template allows it and
the policies permit `approve_emergency`, the request is approved at once for a short while
(the demo's finance template: 15 minutes), the approvers are asked to review it, and a
reviewer confirms it (or revokes it). Elsewhere an emergency waits like any request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.approvals.helpers import approvals_server, events, person
from tests.dtr_fixtures import APPROVALS, REQUESTS, DTRServer, assert_problem, parse_rfc3339

BANK = "https://bank.example.com/payments"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with approvals_server(tmp_path_factory.mktemp("emergency")) as running:
        yield running


def payment_request(who: str, cents: int, subject_type: str = "user") -> dict[str, Any]:
    return {
        "subject": {"type": subject_type, "id": who},
        "action": {"name": "initiate"},
        "resource": {
            "type": "Payment",
            "id": "payment",
            "properties": {"amount_minor": cents, "currency": "EUR"},
        },
    }


def file(server: DTRServer, request: dict[str, Any], **access: Any) -> dict[str, Any]:
    """Evaluate over the AuthZEN API, then file the requestable denial with `access` as its
    `requested_access`; the access request service's answer."""
    denial = server.http.post("/access/v1/evaluation", json=request).json()
    assert denial["decision"] is False, denial
    asked = denial["context"]["access_request"]
    body = {
        **request,
        "denial": {"binding_token": asked["binding_token"], "expires_at": asked["expires_at"]},
        "requested_access": access,
    }
    created = server.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    answer: dict[str, Any] = created.json()
    return answer


def test_an_emergency_payment_is_approved_at_once_for_a_short_while(server: DTRServer) -> None:
    who = person()
    answer = file(server, payment_request(who, 500_000), emergency=True)
    task = answer["task"]
    assert task["status"] == "approved", answer
    until = parse_rfc3339(answer["result"]["approval"]["approved_until"])
    assert time.time() < until <= time.time() + 900 + 1
    assert events(server, task["id"])[:2] == ["filed", "emergency_approved"]

    view = server.view("finance-1", task["id"])
    assert view["reviewable_items"] == [0] and view["actionable_items"] == []
    reviewed = server.http.post(
        f"{APPROVALS}/{task['id']}/review",
        json={"justification": "the supplier was about to stop delivering"},
        headers=server.approver_headers("finance-1"),
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["access_request"]["reviewable_items"] == []
    assert_problem(
        server.http.post(
            f"{APPROVALS}/{task['id']}/review", headers=server.approver_headers("finance-1")
        ),
        409,
    )
    assert events(server, task["id"])[-1] == "reviewed"


def test_a_requested_until_earlier_than_the_emergency_length_holds(server: DTRServer) -> None:
    soon = int(time.time()) + 300
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon))
    answer = file(server, payment_request(person(), 400_000), emergency=True, requested_until=stamp)
    assert answer["result"]["approval"]["approved_until"] == stamp


def test_only_the_templates_approvers_review_it(server: DTRServer) -> None:
    answer = file(server, payment_request(person(), 300_000), emergency=True)
    task_id = answer["task"]["id"]
    refused = server.http.post(
        f"{APPROVALS}/{task_id}/review", headers=server.approver_headers("manager-1")
    )
    assert_problem(refused, 403)


def test_an_emergency_the_policies_do_not_allow_waits_for_approvers(server: DTRServer) -> None:
    # The demo policies let people pay in an emergency, not software agents.
    agent = file(server, payment_request("demo-agent", 250_000, "client"), emergency=True)
    assert agent["task"]["status"] == "pending"
    assert "result" not in agent


def test_a_template_without_emergencies_ignores_the_flag(server: DTRServer) -> None:
    export = {
        "subject": {"type": "user", "id": person()},
        "action": {"name": "export"},
        "resource": {"type": "CustomerRecord", "id": "cust-7777"},
        "context": {"client_id": "demo-agent"},
    }
    answer = file(server, export, emergency=True)
    assert answer["task"]["status"] == "pending"
    assert answer["task"]["progress"]["step_name"] == "approve"
