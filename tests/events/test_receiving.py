"""Receiving events (docs/events.md), over real HTTP against the real bridge:
SETs pushed to `/ssf/events` (RFC 8935) by transmitters the tests play.

- every SET is verified completely before anything changes: a forged, wrong-audience,
  expired, replayed, mistyped or disallowed-type SET is refused with RFC 8935's error, and
  changes nothing (the database is the same before and after);
- CAEP `session-revoked` (and `credential-change`) for a person ends their pending
  deferral, revokes their approvals and refresh tokens, and makes their access tokens
  inactive;
- a decision event from a transmitter the policies allow approves the request (the client's
  poll returns the token); the same from one they do not allow is refused and recorded;
- CAEP `token-claims-change` re-evaluates the person's pending requests and approvals with
  the new facts;
- an event opens an access request, which waits for a manager like any other.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.events.event_types import (
    ACCESS_REQUEST_DECISION,
    ACCESS_REQUEST_OPEN,
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    VERIFICATION,
)
from tests.approvals.helpers import (
    approvals_server,
    audit,
    demo_policies,
    export_for,
    person,
    request_of,
)
from tests.dtr_fixtures import DTRServer, unique_record
from tests.events.helpers import (
    BRIDGE_AUDIENCE,
    EVENT_POLICIES,
    FORGER_KEY,
    PAGER,
    SIGNALS,
    TICKETS,
    SignalSource,
    assert_refused,
    events_config,
    person_id,
    push,
)
from tests.oauth_fixtures import CRM, exchange_form, idp_token, read_details


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    folder = tmp_path_factory.mktemp("receiving")
    store = demo_policies(folder, policies=EVENT_POLICIES)
    with approvals_server(
        folder / "bridge", store, extra=events_config(SIGNALS, PAGER, TICKETS) + GONE_CONFIG
    ) as running:
        yield running


# A transmitter whose keys cannot be loaded: nothing listens where its JWKS should be.
GONE = SignalSource("gone", "https://gone.test", FORGER_KEY, ())
GONE_CONFIG = f"""
[[events.transmitters]]
name = "gone"
issuer = "{GONE.issuer}"
jwks_uri = "http://127.0.0.1:9/jwks"
allow_private_network = true
audience = "{BRIDGE_AUDIENCE}"
events = ["{SESSION_REVOKED}"]
"""


def state(database: Path) -> dict[str, Any]:
    """What an event could change, read from the database itself."""
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in (
                "audit_log",
                "deferrals",
                "access_requests",
                "access_request_approvals",
                "refresh_tokens",
                "revoked_access_tokens",
                "revoked_subjects",
                "outbox",
            )
        }


def read_token(server: DTRServer, who: str) -> str:
    """demo-agent's access token for `who` to read a record (the demo policies permit it)."""
    form = exchange_form(read_details("cust-0001"), subject_token=idp_token(who))
    response = server.token(form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def accepted(server: DTRServer, token: str) -> None:
    response = push(server.http, token)
    assert response.status_code == 202, response.text


def active(server: DTRServer, token: str) -> bool:
    return bool(server.oauth.introspect(token)["active"])


# -- refusals ---------------------------------------------------------------------------


def refusals(who: str) -> list[tuple[str, str, dict[str, str] | None]]:
    """(what, the SET or body, the expected err)."""
    sub_id = person_id(who)
    stranger = SignalSource("stranger", "https://stranger.test", FORGER_KEY, ())
    return [
        ("forged", SIGNALS.set(SESSION_REVOKED, {}, sub_id, key=FORGER_KEY), "invalid_key"),
        (
            "wrong audience",
            SIGNALS.set(SESSION_REVOKED, {}, sub_id, aud="https://elsewhere.test/events"),
            "invalid_audience",
        ),
        (
            "expired",
            SIGNALS.set(SESSION_REVOKED, {}, sub_id, iat=int(time.time()) - 3600),
            "invalid_request",
        ),
        (
            "issued in the future",
            SIGNALS.set(SESSION_REVOKED, {}, sub_id, iat=int(time.time()) + 3600),
            "invalid_request",
        ),
        (
            "a type its transmitter may not send",
            PAGER.set(SESSION_REVOKED, {}, sub_id),
            "access_denied",
        ),
        ("an unknown issuer", stranger.set(SESSION_REVOKED, {}, sub_id), "invalid_issuer"),
        (
            "its transmitter's keys cannot be loaded",
            GONE.set(SESSION_REVOKED, {}, sub_id),
            "authentication_failed",
        ),
        (
            "not typed as a SET",
            SIGNALS.set(SESSION_REVOKED, {}, sub_id, header={"typ": "JWT"}),
            "invalid_request",
        ),
        ("with a sub", SIGNALS.set(SESSION_REVOKED, {}, sub_id, sub=who), "invalid_request"),
        (
            "with an exp",
            SIGNALS.set(SESSION_REVOKED, {}, sub_id, exp=int(time.time()) + 60),
            "invalid_request",
        ),
        (
            "two events",
            SIGNALS.set(
                SESSION_REVOKED, {}, sub_id, events={SESSION_REVOKED: {}, CREDENTIAL_CHANGE: {}}
            ),
            "invalid_request",
        ),
        (
            "an event not conforming to its definition",
            SIGNALS.set(TOKEN_CLAIMS_CHANGE, {"claims": "nope"}, sub_id),
            "invalid_request",
        ),
        ("not a JWS", "not.a.set", "invalid_request"),
    ]


def test_every_refused_set_changes_nothing(server: DTRServer) -> None:
    who = person()
    token = read_token(server, who)
    deferral = server.defer(export_for(who, unique_record()))
    before = state(server.database)
    for what, body, err in refusals(who):
        assert_refused(push(server.http, body), err)
        assert state(server.database) == before, what
    # Not a SET at all: the body's media type is wrong.
    response = server.http.post(
        "/ssf/events", content=SIGNALS.set(SESSION_REVOKED, {}, person_id(who)),
        headers={"Content-Type": "application/jwt"},
    )  # fmt: skip
    assert_refused(response, "invalid_request")
    assert state(server.database) == before
    assert active(server, token)
    assert server.poll(deferral.code).json()["error"] == "authorization_pending"


def test_a_replayed_set_is_refused_and_changes_nothing(server: DTRServer) -> None:
    who = person()
    token = SIGNALS.set(SESSION_REVOKED, {}, person_id(who))
    assert push(server.http, token).status_code == 202
    after_first = state(server.database)
    body = assert_refused(push(server.http, token), "invalid_request")
    assert "received before" in body["description"]
    assert state(server.database) == after_first


def test_a_verification_event_is_acknowledged(server: DTRServer) -> None:
    sub_id = {"format": "opaque", "id": "stream-1"}
    response = push(server.http, SIGNALS.set(VERIFICATION, {"state": "s-1"}, sub_id))
    assert response.status_code == 202, response.text
    assert response.content == b""


# -- session-revoked, credential-change ----------------------------------------------------


def test_session_revoked_ends_the_deferral_and_makes_the_token_inactive(
    server: DTRServer,
) -> None:
    who, other = person(), person()
    token, others_token = read_token(server, who), read_token(server, other)
    deferral = server.defer(export_for(who, unique_record()))
    others_deferral = server.defer(export_for(other, unique_record()))
    assert active(server, token)

    event = {"initiating_entity": "admin", "reason_admin": {"en": "laptop stolen"}}
    response = push(server.http, SIGNALS.set(SESSION_REVOKED, event, person_id(who)))
    assert response.status_code == 202, response.text

    assert server.poll_until_settled(deferral).json()["error"] == "access_denied"
    assert server.oauth.introspect(token) == {"active": False}
    # Nobody else's.
    assert active(server, others_token)
    assert server.poll(others_deferral.code).json()["error"] == "authorization_pending"
    # The access request nobody waits for any more is cancelled, by the transmitter.
    assert request_of(server, "manager-1", who) is None
    [revoked] = [e for e in audit(server) if e["event"] == "subject_revoked"
                 and e["data"]["subject"]["id"] == who]  # fmt: skip
    assert revoked["data"]["reason"] == "laptop stolen"
    assert revoked["data"]["source"]["transmitter"] == "signals"
    assert revoked["actor"] == '["https://signals.test","transmitter","signals"]'
    # A token issued later (a new session) is not revoked.
    time.sleep(1.1)
    assert active(server, read_token(server, who))


def test_credential_change_revokes_the_persons_approvals(server: DTRServer) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    view = server.approve("manager-1", task["id"])
    approval = view["items"][0]["result"]["approval"]["id"]
    issued = server.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert active(server, token)

    change = {"credential_type": "password", "change_type": "revoke"}
    assert (
        push(server.http, SIGNALS.set(CREDENTIAL_CHANGE, change, person_id(who))).status_code == 202
    )
    assert server.oauth.introspect(token) == {"active": False}
    revoked = [e for e in audit(server, task["id"]) if e["event"] == "revoked"]
    assert [e["data"]["approval_id"] for e in revoked] == [approval]
    assert revoked[0]["data"]["source"]["event"] == CREDENTIAL_CHANGE


def test_an_event_about_someone_the_bridge_cannot_tell_changes_nothing(
    server: DTRServer,
) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    session = {
        "format": "complex",
        "user": person_id(who),
        "session": {"format": "opaque", "id": "s-1"},
    }
    assert push(server.http, SIGNALS.set(SESSION_REVOKED, {}, session)).status_code == 202
    another_issuer = {"format": "iss_sub", "iss": "https://other.test", "sub": who}
    assert push(server.http, SIGNALS.set(SESSION_REVOKED, {}, another_issuer)).status_code == 202
    assert server.poll(deferral.code).json()["error"] == "authorization_pending"


# -- decisions by other systems -------------------------------------------------------------


def decision(
    transmitter: SignalSource, task_id: str, verdict: str = "approve", **event: Any
) -> str:
    return transmitter.set(
        ACCESS_REQUEST_DECISION,
        {"decision": verdict, **event},
        {"format": "opaque", "id": task_id},
    )


def test_a_decision_of_a_transmitter_the_policies_allow_approves_the_request(
    server: DTRServer,
) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    event = decision(PAGER, task["id"], decided_by="oncall:jane", justification="incident 42")
    response = push(server.http, event)
    assert response.status_code == 202, response.text

    issued = server.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    [approved] = [e for e in audit(server, task["id"]) if e["event"] == "approved"]
    assert approved["actor"] == '["https://pager.test","transmitter","pager"]'
    assert approved["data"]["justification"] == "incident 42"
    source = approved["data"]["source"]
    assert (source["transmitter"], source["decided_by"]) == ("pager", "oncall:jane")
    assert source["event"] == ACCESS_REQUEST_DECISION and source["iss"] == PAGER.issuer


def test_a_decision_of_a_transmitter_the_policies_do_not_allow_is_refused_and_recorded(
    server: DTRServer,
) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    body = assert_refused(push(server.http, decision(TICKETS, task["id"])), "access_denied")
    assert "policies" in body["description"]
    [refused] = [e for e in audit(server, task["id"]) if e["event"] == "event_refused"]
    assert refused["actor"] == '["https://tickets.test","transmitter","tickets"]'
    assert refused["data"]["source"]["transmitter"] == "tickets"
    assert "approved" not in [e["event"] for e in audit(server, task["id"])]
    assert server.poll(deferral.code).json()["error"] == "authorization_pending"


def test_a_decision_on_no_request_or_a_decided_one_is_refused(server: DTRServer) -> None:
    assert_refused(push(server.http, decision(PAGER, "arq_unknown")), "invalid_request")
    who = person()
    server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    assert push(server.http, decision(PAGER, task["id"], "deny")).status_code == 202
    assert_refused(push(server.http, decision(PAGER, task["id"])), "invalid_request")
    assert_refused(push(server.http, decision(PAGER, task["id"], "maybe")), "invalid_request")
    # Who decided is recorded, at most 200 characters; a justification at most 2,000.
    other = person()
    server.defer(export_for(other, unique_record()))
    waiting = request_of(server, "manager-1", other)
    assert waiting is not None
    for too_long in ({"decided_by": "x" * 201}, {"decided_by": ""}, {"justification": "j" * 2001}):
        refused = push(server.http, decision(PAGER, waiting["id"], "deny", **too_long))
        assert_refused(refused, "invalid_request")
    assert request_of(server, "manager-1", other) is not None  # still waiting


# -- new facts ------------------------------------------------------------------------------


def test_token_claims_change_denies_what_the_new_facts_forbid(server: DTRServer) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    approved_person = person()
    approved_deferral = server.defer(export_for(approved_person, unique_record()))
    approved_task = request_of(server, "manager-1", approved_person)
    assert approved_task is not None
    server.approve("manager-1", approved_task["id"])
    issued = server.poll_until_settled(approved_deferral)
    assert issued.status_code == 200, issued.text

    change = {"claims": {"suspended": True}}
    for target in (who, approved_person):
        pushed = push(server.http, SIGNALS.set(TOKEN_CLAIMS_CHANGE, change, person_id(target)))
        assert pushed.status_code == 202, pushed.text

    assert server.poll_until_settled(deferral).json()["error"] == "access_denied"
    [denied] = [e for e in audit(server, task["id"]) if e["event"] == "denied"]
    assert denied["data"]["source"]["event"] == TOKEN_CLAIMS_CHANGE
    assert server.oauth.introspect(issued.json()["access_token"]) == {"active": False}
    [summary] = [e for e in audit(server) if e["event"] == "subject_reevaluated"
                 and e["data"]["subject"]["id"] == approved_person]  # fmt: skip
    assert summary["data"]["facts"] == {"suspended": True}
    assert len(summary["data"]["revoked"]) == 1

    # Facts the policies do not care about change nothing.
    other = person()
    other_deferral = server.defer(export_for(other, unique_record()))
    unrelated = {"claims": {"department": "sales"}}
    assert (
        push(server.http, SIGNALS.set(TOKEN_CLAIMS_CHANGE, unrelated, person_id(other))).status_code
        == 202
    )
    assert server.poll(other_deferral.code).json()["error"] == "authorization_pending"


# -- a request opened by an event ------------------------------------------------------------


def test_an_event_opens_an_access_request_that_waits_for_a_manager(server: DTRServer) -> None:
    who, record = person(), unique_record()
    event = {
        "resource": {"type": "CustomerRecord", "id": record},
        "action": {"name": "export"},
        "context": {"client_id": "demo-agent"},
        "justification": "audit of " + CRM + record,
    }
    response = push(server.http, SIGNALS.set(ACCESS_REQUEST_OPEN, event, person_id(who)))
    assert response.status_code == 202, response.text
    task = request_of(server, "manager-1", who)
    assert task is not None
    assert task["requester"] == "transmitter:signals"
    assert task["items"][0]["resource"]["id"] == record
    events = [e["event"] for e in audit(server, task["id"])]
    assert events[:2] == ["filed", "opened_by_event"]
    # A request the policies permit outright, or deny outright, opens nothing.
    permitted = dict(event, action={"name": "read"})
    assert (
        push(
            server.http, SIGNALS.set(ACCESS_REQUEST_OPEN, permitted, person_id(person()))
        ).status_code
        == 202
    )
    bad = SIGNALS.set(ACCESS_REQUEST_OPEN, {"resource": "x"}, person_id(who))
    assert_refused(push(server.http, bad), "invalid_request")
