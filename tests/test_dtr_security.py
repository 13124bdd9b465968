"""Deferred approvals under attack, over real HTTP: codes used by the wrong client, twice, or
without their DPoP key; approvers acting without a token or on their own access; tampered
denial bindings and forged approvals at the AuthZEN API; and what a database dump gives away
(shared/specs/dtr.md §4.2, §9, §10; shared/specs/arap.md §3, §11; docs/access-requests.md).

Real bridge (uvicorn on loopback, SQLite, Cedar with policies/default), `interval_seconds = 1`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dtr_fixtures import (
    APPROVALS,
    ARAP_ERROR,
    PING_AGENT,
    REQUESTS,
    Deferral,
    DTRServer,
    PingListener,
    assert_problem,
    database_files,
    database_values,
    dtr_server,
    export_details,
    notification_token,
    payment_details,
    task_ids_about,
    unique_amount,
    unique_record,
)
from tests.oauth_fixtures import (
    DPoPKey,
    assert_oauth_error,
    exchange_form,
    idp_token,
)

DEFERRAL = {"interval_seconds": 1, "code_lifetime_seconds": 60}


@pytest.fixture(scope="module")
def listener() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, listener: PingListener) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("dtr-security")
    with dtr_server(folder, deferral=DEFERRAL, ping_endpoint=listener.url) as running:
        yield running


def defer_export(server: DTRServer, record: str, **kwargs: Any) -> Deferral:
    return server.defer(exchange_form(export_details(record)), **kwargs)


def approve_export(server: DTRServer, record: str) -> None:
    request = server.find_request("manager-1", record)
    server.approve("manager-1", request["id"])


# -- whose code ----------------------------------------------------------------------------


def test_a_code_polled_by_another_client_is_an_unknown_code(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)

    stolen = assert_oauth_error(server.poll(deferral.code, client="other-agent"), "invalid_grant")
    unknown = assert_oauth_error(
        server.poll(secrets.token_urlsafe(32), client="other-agent"), "invalid_grant"
    )
    assert stolen == unknown  # nothing tells "someone else's" from "no such code"

    # Another client revoking the code changes nothing (RFC 7009: 200, no state change).
    assert server.revoke_code(deferral.code, client="other-agent").status_code == 200
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")

    approve_export(server, record)
    assert_oauth_error(server.poll(deferral.code, client="other-agent"), "invalid_grant")
    redeemed = server.poll_until_settled(deferral)
    assert redeemed.status_code == 200, redeemed.text
    assert server.oauth.verify(redeemed.json()["access_token"])[1]["client_id"] == "demo-agent"


def test_a_redeemed_code_cannot_be_replayed(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    approve_export(server, record)
    redeemed = server.poll_until_settled(deferral)
    assert redeemed.status_code == 200, redeemed.text
    token = redeemed.json()["access_token"]

    for _ in range(2):
        body = assert_oauth_error(server.poll(deferral.code), "invalid_grant")
        assert "already redeemed" in body.get("error_description", "")
    assert_oauth_error(server.poll(deferral.code, client="other-agent"), "invalid_grant")

    # Revoking the spent code does not revoke the token it gave.
    assert server.revoke_code(deferral.code).status_code == 200
    assert server.oauth.introspect(token)["active"] is True
    assert_oauth_error(server.poll(deferral.code), "invalid_grant")


# -- DPoP ----------------------------------------------------------------------------------


def test_a_dpop_bound_code_needs_its_key_and_gives_a_token_bound_to_it(
    server: DTRServer,
) -> None:
    key, thief = DPoPKey(), DPoPKey()
    record = unique_record()
    details = export_details(record)
    deferral = server.defer(exchange_form(details), client="demo-public", dpop=key.proof())

    # The key is part of what is approved.
    request = server.find_request("manager-1", record)
    assert request["context"]["dpop_jkt"] == key.jkt
    assert request["context"]["client_id"] == "demo-public"

    wrong = server.poll(deferral.code, client="demo-public", key=thief)
    assert_oauth_error(wrong, "invalid_dpop_proof")
    assert_oauth_error(server.poll(deferral.code, client="demo-public"), "invalid_dpop_proof")
    # Cancelling needs the key too; the failed attempt cancels nothing.
    refused = server.revoke_code(deferral.code, client="demo-public", key=thief)
    assert_oauth_error(refused, "invalid_dpop_proof")
    pending = server.poll(deferral.code, client="demo-public", key=key)
    assert_oauth_error(pending, "authorization_pending")

    server.approve("manager-1", request["id"])
    # Even approved, the code gives nothing without the key.
    time.sleep(1.0)
    wrong = server.poll(deferral.code, client="demo-public", key=thief)
    assert_oauth_error(wrong, "invalid_dpop_proof")

    redeemed = server.poll_until_settled(deferral, client="demo-public", key=key)
    assert redeemed.status_code == 200, redeemed.text
    token = redeemed.json()
    assert token["token_type"] == "DPoP"
    assert token["authorization_details"] == details
    _, claims = server.oauth.verify(token["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    assert claims["client_id"] == "demo-public"


def test_a_public_client_opting_in_without_dpop_is_refused_with_invalid_request(
    server: DTRServer,
) -> None:
    record = unique_record()
    form = {**exchange_form(export_details(record)), "completion_mode": "deferred"}
    response = server.token(form, client="demo-public")
    body = assert_oauth_error(response, "invalid_request")
    assert "dpop" in body.get("error_description", "").lower()
    assert task_ids_about(server.database, record) == []


# -- approvers -----------------------------------------------------------------------------


def test_an_approver_cannot_approve_their_own_access(server: DTRServer) -> None:
    record = unique_record()
    form = exchange_form(export_details(record), subject_token=idp_token("manager-1"))
    deferral = server.defer(form)
    [task_id] = task_ids_about(server.database, record)

    # Not in their inbox, not viewable, not decidable by them.
    assert server.requests_about("manager-1", record) == []
    viewed = server.http.get(f"{APPROVALS}/{task_id}", headers=server.approver_headers("manager-1"))
    assert_problem(viewed, 403)
    refused = server.decide("manager-1", task_id, "approve")
    assert_problem(refused, 403)
    # Finance is no manager either.
    assert_problem(server.decide("finance-1", task_id, "approve"), 403)

    time.sleep(deferral.interval)
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")


def test_the_approver_api_needs_an_approvers_token(server: DTRServer) -> None:
    record = unique_record()
    deferral = defer_export(server, record)
    task_id = server.find_request("manager-1", record)["id"]

    for headers in ({}, {"Authorization": f"Bearer {idp_token('manager-1')}"}):
        listed = server.http.get(APPROVALS, headers=headers)
        assert_problem(listed, 401)
        assert listed.headers["www-authenticate"].lower().startswith("bearer")
        decided = server.http.post(
            f"{APPROVALS}/{task_id}", json={"decision": "approve"}, headers=headers
        )
        assert_problem(decided, 401)
        assert decided.headers["www-authenticate"].lower().startswith("bearer")

    assert server.view("manager-1", task_id)["status"] == "pending"
    assert_oauth_error(server.poll(deferral.code), "authorization_pending")


# -- the AuthZEN side: denial bindings and approvals -------------------------------------


def export_evaluation(record: str, client_id: str = "demo-agent") -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "export"},
        "resource": {"type": "CustomerRecord", "id": record},
        "context": {"client_id": client_id},
    }


def requestable_denial(server: DTRServer, request: dict[str, Any]) -> dict[str, Any]:
    response = server.http.post("/access/v1/evaluation", json=request)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["decision"] is False
    context: dict[str, Any] = decision["context"]
    assert context["access_request"]["template"] == "manager"
    return context


def submission(request: dict[str, Any], denial_context: dict[str, Any], token: str) -> Any:
    access_request = denial_context["access_request"]
    return {
        **request,
        "denial": {
            "evaluation_id": denial_context["evaluation_id"],
            "expires_at": access_request["expires_at"],
            "reason": denial_context["reason"],
            "binding_token": token,
        },
    }


def flip_one_character(token: str) -> str:
    """The token with one character of its signature changed (in the middle, where every
    bit of the character is signature data)."""
    head, payload, signature = token.split(".")
    n = len(signature) // 2
    changed = "B" if signature[n] == "A" else "A"
    return ".".join([head, payload, signature[:n] + changed + signature[n + 1 :]])


def test_a_tampered_binding_token_is_refused(server: DTRServer) -> None:
    request = export_evaluation(unique_record())
    denial = requestable_denial(server, request)
    genuine = denial["access_request"]["binding_token"]
    tampered = flip_one_character(genuine)
    assert tampered != genuine

    refused = server.http.post(REQUESTS, json=submission(request, denial, tampered))
    assert_problem(refused, 400, ARAP_ERROR + "invalid_denial_binding")

    # The untouched token is accepted: it was the change that was refused.
    accepted = server.http.post(REQUESTS, json=submission(request, denial, genuine))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["task"]["status"] == "pending"


def test_a_forged_approval_in_the_context_does_not_permit(server: DTRServer) -> None:
    record = unique_record()
    request = export_evaluation(record)
    forged = {
        "id": "apr_" + secrets.token_urlsafe(24),
        "template": "manager",
        "approved_until": "2099-01-01T00:00:00Z",
    }
    assert (
        server.oauth.evaluate({**request, "context": {**request["context"], "approval": forged}})
        is False
    )

    # A real approval, for this request only.
    denial = requestable_denial(server, request)
    filed = server.http.post(
        REQUESTS, json=submission(request, denial, denial["access_request"]["binding_token"])
    )
    assert filed.status_code == 202, filed.text
    task_id = filed.json()["task"]["id"]
    server.approve("manager-1", task_id)
    status = server.http.get(f"{REQUESTS}/{task_id}")
    assert status.status_code == 200, status.text
    approval = status.json()["result"]["approval"]

    def with_approval(evaluation: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        return {**evaluation, "context": {**evaluation["context"], "approval": value}}

    assert server.oauth.evaluate(with_approval(request, approval)) is True  # control
    # Not for another record, not through another client, not with a made-up id.
    assert (
        server.oauth.evaluate(with_approval(export_evaluation(unique_record()), approval)) is False
    )
    assert (
        server.oauth.evaluate(with_approval(export_evaluation(record, "demo-public"), approval))
        is False
    )
    assert server.oauth.evaluate(with_approval(request, {**approval, "id": forged["id"]})) is False


# -- at rest -------------------------------------------------------------------------------


def assert_nowhere_in_database(server: DTRServer, *secrets_: str) -> None:
    files = database_files(server.database)
    assert server.database.name in files
    for name, data in files.items():
        for secret in secrets_:
            assert secret.encode() not in data, f"{secret[:6]}... found in {name}"
    cells = 0
    for table, column, value in database_values(server.database):
        cells += 1
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for secret in secrets_:
            assert secret not in text, f"{secret[:6]}... found in {table}.{column}"
    assert cells > 0


def test_a_database_dump_holds_neither_deferral_codes_nor_notification_tokens(
    server: DTRServer, listener: PingListener
) -> None:
    listener.reset()
    (amount, cents), token = unique_amount(), notification_token()
    form = {**exchange_form(payment_details(amount)), "client_notification_token": token}
    deferral = server.defer(form, client=PING_AGENT)
    # The deferral is stored: its task waits for finance.
    request = server.find_request("finance-1", cents)
    assert_nowhere_in_database(server, deferral.code, token)

    # Approved: the ping (which needs both) is queued, sent and delivered.
    server.approve("finance-1", request["id"])
    [delivery] = listener.wait_for(deferral.code, 1)
    assert delivery.headers["authorization"] == f"Bearer {token}"
    assert_nowhere_in_database(server, deferral.code, token)

    redeemed = server.poll(deferral.code, client=PING_AGENT)
    assert redeemed.status_code == 200, redeemed.text
    assert_nowhere_in_database(server, deferral.code, token)
