"""Revoking a granted approval: by an approver whom policy allows
(`POST /access/v1/approvals/{id}/revoke`) or by an operator (`bridge approvals revoke ID`).
From then on a deferral waiting on it answers `access_denied`, tokens issued under it are
inactive at introspection, an AuthZEN re-evaluation presenting it is denied, and nothing can
be refreshed under it (tokens issued under an approval carry no refresh token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.approvals.helpers import approvals_server, audit, bridge, export_for, person, request_of
from tests.dtr_fixtures import APPROVALS, Deferral, DTRServer, assert_problem, unique_record
from tests.oauth_fixtures import basic_header


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with approvals_server(tmp_path_factory.mktemp("revocation")) as running:
        yield running


def approved(server: DTRServer) -> tuple[Deferral, dict[str, Any], str]:
    """A deferred export for a new person, approved by manager-1: (deferral, the request
    as the manager sees it, the approval id)."""
    who = person()
    record = unique_record()
    deferral = server.defer(export_for(who, record))
    task = request_of(server, "manager-1", who)
    assert task is not None
    view = server.approve("manager-1", task["id"])
    return deferral, view, view["items"][0]["result"]["approval"]["id"]


def revoke(server: DTRServer, sub: str, approval_id: str, **body: Any) -> Any:
    return server.http.post(
        f"{APPROVALS}/{approval_id}/revoke", json=body or None, headers=server.approver_headers(sub)
    )


def introspect(server: DTRServer, token: str) -> dict[str, Any]:
    response = server.http.post(
        "/introspect",
        data={"token": token},
        headers=basic_header("demo-agent", "demo-agent-secret-for-tests"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_deferral_waiting_on_a_revoked_approval_answers_access_denied(
    server: DTRServer,
) -> None:
    deferral, _, approval = approved(server)
    response = revoke(server, "manager-1", approval, reason="asked by mistake")
    assert response.status_code == 200, response.text
    assert response.json()["approval"] == {
        "id": approval,
        "access_request": response.json()["approval"]["access_request"],
        "status": "revoked",
        "approved_until": response.json()["approval"]["approved_until"],
    }
    assert server.poll_until_settled(deferral).json()["error"] == "access_denied"


def test_a_token_issued_under_a_revoked_approval_is_inactive(server: DTRServer) -> None:
    deferral, _, approval = approved(server)
    issued = server.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert "refresh_token" not in body, "an approval bounds the whole credential"
    assert introspect(server, body["access_token"])["active"] is True
    assert revoke(server, "manager-1", approval).status_code == 200
    assert introspect(server, body["access_token"]) == {"active": False}


def test_an_evaluation_presenting_a_revoked_approval_is_denied(server: DTRServer) -> None:
    deferral, view, approval_id = approved(server)
    approval = view["items"][0]["result"]["approval"]
    evaluation = {
        "subject": view["subject"],
        "resource": view["items"][0]["resource"],
        "action": view["items"][0]["action"],
        "context": {**view["context"], "approval": approval},
    }
    before = server.http.post("/access/v1/evaluation", json=evaluation).json()
    assert before["decision"] is True, before
    assert before["context"]["evaluation_id"].startswith("eval_")
    assert revoke(server, "manager-1", approval_id).status_code == 200
    after = server.http.post("/access/v1/evaluation", json=evaluation).json()
    assert after["decision"] is False, after
    found = {
        e["data"]["evaluation_id"]: e["data"]
        for e in audit(server, view["id"])
        if e["event"] == "reevaluated"
    }
    assert found[before["context"]["evaluation_id"]]["decision"] is True
    assert found[after["context"]["evaluation_id"]]["decision"] is False
    assert found[after["context"]["evaluation_id"]]["policy_version"].startswith("sha256:")
    server.revoke_code(deferral.code)


def test_only_an_approver_policy_allows_may_revoke(server: DTRServer) -> None:
    _, view, approval = approved(server)
    refused = revoke(server, "finance-1", approval)
    assert assert_problem(refused, 403)["detail"] == "you may not revoke this approval"
    unknown = revoke(server, "manager-1", "apr_unknown")
    assert_problem(unknown, 404)
    assert revoke(server, "manager-1", approval).status_code == 200
    assert_problem(revoke(server, "manager-1", approval), 409)
    [entry] = [e for e in audit(server, view["id"]) if e["event"] == "revoked"]
    assert json.loads(entry["actor"])[1:] == ["user", "manager-1"]


def test_revocation_needs_an_approver_token(server: DTRServer) -> None:
    _, _, approval = approved(server)
    response = server.http.post(f"{APPROVALS}/{approval}/revoke")
    assert_problem(response, 401)


def test_an_operator_revokes_from_the_command_line(server: DTRServer) -> None:
    deferral, view, approval = approved(server)
    done = bridge(
        "approvals", "revoke", approval, "--reason", "left the company", config=server.oauth.config
    )
    assert done.returncode == 0, done.stderr
    assert f"approval {approval} of access request {view['id']} revoked" in done.stdout
    again = bridge("approvals", "revoke", approval, config=server.oauth.config)
    assert again.returncode == 1 and "revoked already" in again.stderr
    missing = bridge("approvals", "revoke", "apr_nope", config=server.oauth.config)
    assert missing.returncode == 1 and "no approval apr_nope" in missing.stderr
    [entry] = [e for e in audit(server, view["id"]) if e["event"] == "revoked"]
    assert entry["actor"] == "operator"
    assert entry["data"]["reason"] == "left the company"
    assert server.poll_until_settled(deferral).json()["error"] == "access_denied"


def test_the_approver_view_says_what_is_revoked_and_what_one_may_revoke(
    server: DTRServer,
) -> None:
    _, view, approval = approved(server)
    assert view["revocable_items"] == [0] and view["revoked_items"] == []
    assert revoke(server, "manager-1", approval).status_code == 200
    after = server.view("manager-1", view["id"])
    assert after["revocable_items"] == [] and after["revoked_items"] == [0]
