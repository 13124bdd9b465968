"""One credential, one purpose: a token a client holds for token exchange never opens the
approver API, an approver's token is never exchanged, and nobody a request was made for or
through approves it, whatever the policies say.

The story: the organisation's identity provider issues both users' tokens and approvers'
tokens (`access_requests.approver_issuer` is the same trusted issuer). The agent
`demo-agent` holds alice's token and exchanges it for an export of a customer record, which
needs a manager's approval; it then tries to approve its own deferred request with alice's
token, and alice and the agent try with approver tokens of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.access_requests.approvers import parties
from bridge.settings import ConfigError, load_settings
from bridge.store.contract import TaskRecord
from tests.dtr_fixtures import (
    APPROVALS,
    Deferral,
    DTRServer,
    assert_deferred,
    dtr_clients,
    export_details,
    unique_record,
)
from tests.oauth_fixtures import (
    IDP,
    ISSUER,
    JWT_BEARER,
    assert_oauth_error,
    exchange_form,
    idp_token,
    oauth_server,
    rar,
)

# The approver API's URL (under the server's default public URL): approver tokens' audience.
APPROVER_AUDIENCE = "http://127.0.0.1:8080" + APPROVALS
EXTRA = f"""
[access_requests]
approver_issuer = "{IDP}"
allow_anonymous_requesters = true
[deferral]
interval_seconds = 1
"""


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("one-credential")
    with oauth_server(folder, clients=dtr_clients(), extra=EXTRA) as server:
        settings = load_settings(server.config)
        assert settings.approver_audience == APPROVER_AUDIENCE
        yield DTRServer(server, settings, folder)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def approver(sub: str) -> dict[str, str]:
    return bearer(idp_token(sub, aud=APPROVER_AUDIENCE))


def deferred_export_for_alice(bridge: DTRServer) -> tuple[Deferral, str, str]:
    """alice's token, exchanged by demo-agent for an export: (deferral, alice's subject
    token, the access request's id as manager-1 finds it)."""
    record = unique_record()
    subject_token = idp_token("alice")
    form = exchange_form(export_details(record), subject_token=subject_token)
    response = bridge.token({**form, "completion_mode": "deferred"})
    body = assert_deferred(response)
    deferral = Deferral(body["deferral_code"], body["expires_in"], body["interval"])
    inbox = bridge.http.get(APPROVALS, headers=approver("manager-1")).json()
    (task,) = [
        t
        for t in inbox["access_requests"]
        if any(i["resource"]["id"] == record for i in t["items"])
    ]
    return deferral, subject_token, task["id"]


def test_the_client_cannot_approve_with_the_users_token(bridge: DTRServer) -> None:
    deferral, subject_token, task_id = deferred_export_for_alice(bridge)
    # The token the client holds for token exchange opens nothing at the approver API.
    inbox = bridge.http.get(APPROVALS, headers=bearer(subject_token))
    assert inbox.status_code == 401
    assert "audience" in inbox.json()["detail"]
    assert 'error="invalid_token"' in inbox.headers["www-authenticate"]
    decided = bridge.http.post(
        f"{APPROVALS}/{task_id}", json={"decision": "approve"}, headers=bearer(subject_token)
    )
    assert decided.status_code == 401

    # With approver tokens of their own, neither alice nor the agent may decide it.
    for sub in ("alice", "demo-agent"):
        seen = bridge.http.get(APPROVALS, headers=approver(sub)).json()["access_requests"]
        assert task_id not in [t["id"] for t in seen]
        view = bridge.http.get(f"{APPROVALS}/{task_id}", headers=approver(sub))
        assert view.status_code == 403, view.text
        refused = bridge.http.post(
            f"{APPROVALS}/{task_id}", json={"decision": "approve"}, headers=approver(sub)
        )
        assert refused.status_code == 403
        assert "made for or through you" in refused.json()["detail"]

    # The request is still pending, and a manager approves it as before.
    assert bridge.poll(deferral.code).json()["error"] == "authorization_pending"
    approved = bridge.http.post(
        f"{APPROVALS}/{task_id}", json={"decision": "approve"}, headers=approver("manager-1")
    )
    assert approved.status_code == 200, approved.text
    token = bridge.poll_until_settled(deferral)
    assert token.status_code == 200, token.text
    assert token.json()["authorization_details"][0]["actions"] == ["export"]


def test_the_same_approver_still_approves_other_peoples_requests(bridge: DTRServer) -> None:
    # manager-1 is refused nothing but what was made for or through manager-1.
    for user in ("bob", "carol"):
        record = unique_record()
        form = exchange_form(export_details(record), subject_token=idp_token(user))
        deferral = bridge.defer(form)
        inbox = bridge.http.get(APPROVALS, headers=approver("manager-1")).json()
        (task,) = [
            t
            for t in inbox["access_requests"]
            if any(i["resource"]["id"] == record for i in t["items"])
        ]
        decided = bridge.http.post(
            f"{APPROVALS}/{task['id']}", json={"decision": "approve"}, headers=approver("manager-1")
        )
        assert decided.status_code == 200, decided.text
        assert bridge.poll_until_settled(deferral).status_code == 200


def test_an_approver_token_is_no_subject_token_nor_assertion(bridge: DTRServer) -> None:
    approver_token = idp_token("manager-1", aud=APPROVER_AUDIENCE)
    exchanged = bridge.token(
        exchange_form(export_details(unique_record()), subject_token=approver_token)
    )
    assert_oauth_error(exchanged, "invalid_grant")
    actor = bridge.token(
        exchange_form(
            export_details(unique_record()), subject_token=idp_token(), actor_token=approver_token
        )
    )
    assert_oauth_error(actor, "invalid_grant")
    assertion = bridge.token(
        {
            "grant_type": JWT_BEARER,
            "assertion": idp_token("manager-1", aud=APPROVER_AUDIENCE),
            "authorization_details": rar(export_details(unique_record())),
        }
    )
    assert_oauth_error(assertion, "invalid_grant")


def test_a_token_for_both_audiences_serves_neither(bridge: DTRServer) -> None:
    both: Any = [ISSUER, APPROVER_AUDIENCE]
    token = idp_token("manager-1", aud=both)
    refused = bridge.http.get(APPROVALS, headers=bearer(token))
    assert refused.status_code == 401
    assert "another use" in refused.json()["detail"]
    exchanged = bridge.token(exchange_form(export_details(unique_record()), subject_token=token))
    assert_oauth_error(exchanged, "invalid_grant")
    assert "another use" in exchanged.json()["error_description"]


def test_approver_401s_say_which_check_failed(bridge: DTRServer) -> None:
    expired = bridge.http.get(
        APPROVALS, headers=bearer(idp_token("manager-1", aud=APPROVER_AUDIENCE, expires_in=-120))
    )
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert (
        'error_description="the approver token is refused: the token has expired"'
        in (expired.headers["www-authenticate"])
    )
    stranger = bridge.http.get(APPROVALS, headers=bearer(idp_token(iss="https://nobody.test")))
    assert "not issued by a trusted issuer" in stranger.json()["detail"]
    missing = bridge.http.get(APPROVALS)
    assert missing.status_code == 401 and "bearer token is required" in missing.json()["detail"]


def test_approver_audience_may_not_be_a_subject_audience(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    for audience in ("http://127.0.0.1:8080", "http://127.0.0.1:8080/token"):
        config.write_text(f'[access_requests]\napprover_audience = "{audience}"\n')
        with pytest.raises(ConfigError) as caught:
            load_settings(config)
        assert "give approver tokens their own" in str(caught.value.problems[0])
    config.write_text(
        '[access_requests]\napprover_audience = "https://approvals.example"\n'
        "[[oauth.trusted_issuers]]\n"
        'issuer = "https://idp.example"\naudience = "https://approvals.example"\n'
        'jwks_uri = "https://idp.example/jwks"\n'
    )
    with pytest.raises(ConfigError):
        load_settings(config)
    config.write_text('[access_requests]\napprover_audience = "https://approvals.example"\n')
    assert load_settings(config).approver_audience == "https://approvals.example"


def task(**fields: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "id": "arq_1",
        "pdp": "p",
        "requester": "pep:system",
        "bundle": False,
        "subject": {"type": "user", "id": "alice"},
        "context": {},
        "items": [],
        "requested_access": None,
        "callback": None,
        "client": None,
        "status": "pending",
        "created_at": 0.0,
        "expires_at": 1.0,
        "retain_until": 1.0,
        "updated_at": 0.0,
        **fields,
    }
    return TaskRecord(**values)


def test_the_parties_of_a_request() -> None:
    assert parties(task()) == {"alice"}
    chain = {"sub": "agent-b", "act": {"sub": "agent-a", "act": {"sub": "orchestrator"}}}
    actors = task(subject={"type": "user", "id": "alice", "properties": {"act": chain}})
    assert parties(actors) == {"alice", "agent-b", "agent-a", "orchestrator"}
    assert parties(task(requester="client:demo-agent")) == {"alice", "demo-agent"}
    assert parties(task(client={"client_id": "crm"}, context={"client_id": "mobile"})) == {
        "alice",
        "crm",
        "mobile",
    }
    # The requesting PEP is a system, not a party the request was made for.
    assert "system" not in parties(task())
