"""The bridge as an SSF transmitter (docs/events.md), with two bridges over real
HTTP and real keys: A transmits, B receives.

- A's `/.well-known/ssf-configuration` and its stream management API, for receivers with
  a bearer token of a trusted issuer (create, read, update, replace, status, subjects,
  verification, delete; each receiver sees its own streams only);
- the identity provider tells A that a person's session was revoked; A revokes it and tells
  B on B's push stream, and B ends the person's deferral there: exactly one delivery;
- a second JOSE library (PyJWT, with A's published keys) verifies A's SETs, taken from a
  poll stream (RFC 8936): `typ`, signature, `iss`, `aud`, no `sub`, no `exp`;
- A's own events about access requests (filed, approved, approval revoked, and CAEP
  `session-revoked` for the token issued under the approval).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bridge.events.event_types import (
    ACCESS_REQUEST_APPROVED,
    ACCESS_REQUEST_FILED,
    APPROVAL_REVOKED,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    VERIFICATION,
)
from tests.approvals.helpers import approvals_server, export_for, person, request_of
from tests.dtr_fixtures import APPROVALS, DTRServer, unique_record
from tests.events.helpers import (
    SIGNALS,
    events_config,
    person_id,
    push,
    wait_until,
)
from tests.oauth_fixtures import IDP, ISSUER, idp_token

A_MANAGEMENT = "https://bridge-a.test/ssf"
B_AUDIENCE = "https://bridge-b.test/ssf/events"
SIEM_AUDIENCE = "https://siem.test"
PUSH_METHOD = "urn:ietf:rfc:8935"
POLL_METHOD = "urn:ietf:rfc:8936"


def transmitter_config() -> str:
    """A's: the identity provider pushes to it; it transmits to bridge-b and to a SIEM."""
    receivers = "\n".join(
        [
            "[[events.transmitter.receivers]]",
            'name = "bridge-b"',
            f'issuer = "{IDP}"',
            'subject = "bridge-b"',
            f'audience = "{B_AUDIENCE}"',
            "allow_private_network = true",
            "",
            "[[events.transmitter.receivers]]",
            'name = "siem"',
            f'issuer = "{IDP}"',
            'subject = "siem"',
            f'audience = "{SIEM_AUDIENCE}"',
            "max_streams = 2",
            "",
        ]
    )
    transmitter = (
        "[events.transmitter]\nenabled = true\n"
        f'audience = "{A_MANAGEMENT}"\nmin_verification_interval_seconds = 30\n\n'
    )
    return events_config(SIGNALS) + transmitter + receivers


def receiver_config(a_url: str) -> str:
    """B's: A is one of its transmitters."""
    return "\n".join(
        [
            "",
            "[events]",
            "[[events.transmitters]]",
            'name = "bridge-a"',
            f'issuer = "{ISSUER}"',
            f'jwks_uri = "{a_url}/jwks"',
            f'audience = "{B_AUDIENCE}"',
            f'events = ["{SESSION_REVOKED}", "{TOKEN_CLAIMS_CHANGE}"]',
            "",
        ]
    )


@dataclass
class Bridges:
    a: DTRServer
    b: DTRServer


@pytest.fixture(scope="module")
def bridges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridges]:
    folder = tmp_path_factory.mktemp("transmitter")
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(approvals_server(folder / "a", extra=transmitter_config()))
        b = stack.enter_context(approvals_server(folder / "b", extra=receiver_config(a.oauth.url)))
        yield Bridges(a, b)


def receiver_headers(sub: str, aud: str = A_MANAGEMENT) -> dict[str, str]:
    return {"Authorization": "Bearer " + idp_token(sub, aud=aud)}


def create_stream(a: DTRServer, receiver: str, body: dict[str, Any]) -> dict[str, Any]:
    response = a.http.post("/ssf/streams", json=body, headers=receiver_headers(receiver))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    stream: dict[str, Any] = response.json()
    return stream


def poll(
    a: DTRServer, stream_id: str, acks: list[str] | None = None, receiver: str = "siem"
) -> dict[str, Any]:
    body: dict[str, Any] = {"returnImmediately": True}
    if acks:
        body["ack"] = acks
    response = a.http.post(f"/ssf/poll/{stream_id}", json=body, headers=receiver_headers(receiver))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def verified(a: DTRServer, token: str, audience: str = SIEM_AUDIENCE) -> dict[str, Any]:
    """A's SET as a receiver using another JOSE library checks it, with A's published keys."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt"
    keys = jwt.PyJWKClient(f"{a.oauth.url}/jwks")
    claims: dict[str, Any] = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["ES256", "ES384", "RS256", "PS256", "EdDSA"],
        issuer=ISSUER,
        audience=audience,
        options={"require": ["iss", "aud", "iat", "jti"]},
    )
    assert "sub" not in claims and "exp" not in claims  # SSF 1.0 §4.1.2, §4.1.6
    assert len(claims["events"]) == 1 and isinstance(claims["sub_id"], dict)
    return claims


def polled_events(
    a: DTRServer, stream_id: str, wanted: str, *, seconds: float = 30.0
) -> list[dict[str, Any]]:
    """The verified SETs of `stream_id` once one of type `wanted` is there (acknowledged)."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        answer = poll(a, stream_id)
        sets = answer["sets"]
        found.extend(verified(a, token) for token in sets.values())
        if sets:
            poll(a, stream_id, acks=list(sets))
        return any(wanted in claims["events"] for claims in found)

    wait_until(f"a {wanted} SET", arrived, seconds)
    return found


# -- discovery and stream management ------------------------------------------------------


def test_the_transmitter_configuration_is_published(bridges: Bridges) -> None:
    response = bridges.a.http.get("/.well-known/ssf-configuration")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == ISSUER
    assert metadata["jwks_uri"] == ISSUER + "/jwks"
    assert metadata["delivery_methods_supported"] == [PUSH_METHOD, POLL_METHOD]
    assert metadata["configuration_endpoint"].endswith("/ssf/streams")
    assert metadata["verification_endpoint"].endswith("/ssf/verify")
    assert metadata["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6750"}]
    assert metadata["spec_version"] == "1_0"
    # A bridge that transmits nothing publishes nothing.
    assert bridges.b.http.get("/.well-known/ssf-configuration").status_code == 404


def test_stream_management_is_for_configured_receivers_only(bridges: Bridges) -> None:
    a = bridges.a
    response = a.http.get("/ssf/streams")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong_audience = receiver_headers("siem", aud=ISSUER)
    assert a.http.get("/ssf/streams", headers=wrong_audience).status_code == 401
    assert a.http.get("/ssf/streams", headers=receiver_headers("intruder")).status_code == 403
    # The management API's audience is its own: such a token is no subject token.
    exchange = a.token(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": idp_token("alice@example.com", aud=A_MANAGEMENT),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "customers:read",
        }
    )
    assert exchange.status_code in (400, 401), exchange.text


def test_a_push_endpoint_on_a_private_address_needs_allow_private_network(
    bridges: Bridges,
) -> None:
    # The SIEM's receiver may not point the bridge at the inside of its own network.
    for url in ("https://10.0.0.7/events", "https://localhost/events", "http://example.com/e"):
        body = {"delivery": {"method": PUSH_METHOD, "endpoint_url": url}}
        refused = bridges.a.http.post("/ssf/streams", json=body, headers=receiver_headers("siem"))
        assert refused.status_code == 400, (url, refused.text)
        assert refused.json()["error"] == "invalid_request"


def test_a_stream_is_created_read_changed_and_deleted(bridges: Bridges) -> None:
    a = bridges.a
    created = create_stream(
        a, "siem", {"events_requested": [ACCESS_REQUEST_FILED, "urn:unknown"], "description": "x"}
    )
    stream_id = created["stream_id"]
    assert created["iss"] == ISSUER and created["aud"] == SIEM_AUDIENCE
    assert created["delivery"] == {
        "method": POLL_METHOD,
        "endpoint_url": created["delivery"]["endpoint_url"],
    }
    assert created["delivery"]["endpoint_url"].endswith(f"/ssf/poll/{stream_id}")
    assert created["events_delivered"] == [ACCESS_REQUEST_FILED]
    assert SESSION_REVOKED in created["events_supported"]
    headers = receiver_headers("siem")

    read = a.http.get("/ssf/streams", params={"stream_id": stream_id}, headers=headers)
    assert read.json() == created
    listed = a.http.get("/ssf/streams", headers=headers).json()
    assert stream_id in [s["stream_id"] for s in listed]
    # An empty stream_id names no stream and is not the list either (found by make fuzz).
    empty = a.http.get("/ssf/streams", params={"stream_id": ""}, headers=headers)
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"
    # Another receiver does not see it.
    other = receiver_headers("bridge-b")
    assert (
        a.http.get("/ssf/streams", params={"stream_id": stream_id}, headers=other).status_code
        == 404
    )
    assert stream_id not in [
        s["stream_id"] for s in a.http.get("/ssf/streams", headers=other).json()
    ]

    patched = a.http.patch(
        "/ssf/streams",
        json={"stream_id": stream_id, "events_requested": [APPROVAL_REVOKED]},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events_delivered"] == [APPROVAL_REVOKED]
    assert patched.json()["description"] == "x"  # what was not sent is kept
    replaced = a.http.put("/ssf/streams", json={"stream_id": stream_id}, headers=headers)
    assert replaced.status_code == 200, replaced.text
    assert "description" not in replaced.json()  # what was not sent is deleted
    bad = a.http.patch(
        "/ssf/streams", json={"stream_id": stream_id, "aud": "https://other.test"}, headers=headers
    )
    assert bad.status_code == 400

    status = a.http.post(
        "/ssf/status",
        json={"stream_id": stream_id, "status": "paused", "reason": "maintenance"},
        headers=headers,
    )
    assert status.json() == {"stream_id": stream_id, "status": "paused", "reason": "maintenance"}
    read_status = a.http.get("/ssf/status", params={"stream_id": stream_id}, headers=headers)
    assert read_status.json()["status"] == "paused"
    assert (
        a.http.post(
            "/ssf/status", json={"stream_id": stream_id, "status": "sleepy"}, headers=headers
        ).status_code
        == 400
    )

    subject = {"format": "email", "email": "someone@example.com"}
    added = a.http.post(
        "/ssf/subjects:add", json={"stream_id": stream_id, "subject": subject}, headers=headers
    )
    assert added.status_code == 200
    removed = a.http.post(
        "/ssf/subjects:remove", json={"stream_id": stream_id, "subject": subject}, headers=headers
    )
    assert removed.status_code == 204

    deleted = a.http.delete("/ssf/streams", params={"stream_id": stream_id}, headers=headers)
    assert deleted.status_code == 204
    assert (
        a.http.get("/ssf/status", params={"stream_id": stream_id}, headers=headers).status_code
        == 404
    )


def test_a_receiver_may_have_as_many_streams_as_configured(bridges: Bridges) -> None:
    a = bridges.a
    headers = receiver_headers("siem")
    for stream in a.http.get("/ssf/streams", headers=headers).json():
        a.http.delete("/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=headers)
    made = {create_stream(a, "siem", {})["stream_id"] for _ in range(2)}
    third = a.http.post("/ssf/streams", json={}, headers=headers)
    assert third.status_code == 409, third.text
    listed = a.http.get("/ssf/streams", headers=headers).json()
    assert {s["stream_id"] for s in listed} == made  # max_streams = 2, the third not made
    for stream in listed:
        a.http.delete("/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=headers)


def test_a_subject_with_no_canonical_form_is_refused(bridges: Bridges) -> None:
    a = bridges.a
    headers = receiver_headers("siem")
    for stream in a.http.get("/ssf/streams", headers=headers).json():
        a.http.delete("/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=headers)
    stream_id = create_stream(a, "siem", {})["stream_id"]
    # Found by `make fuzz`: a number beyond 2^53 has no RFC 8785 spelling to keep it by.
    subject = {"format": "opaque", "id": "x", "n": 579359417659877504}
    refused = a.http.post(
        "/ssf/subjects:add", json={"stream_id": stream_id, "subject": subject}, headers=headers
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request"
    a.http.delete("/ssf/streams", params={"stream_id": stream_id}, headers=headers)


def test_a_verification_event_comes_on_the_stream(bridges: Bridges) -> None:
    a = bridges.a
    stream = create_stream(a, "siem", {})
    headers = receiver_headers("siem")
    body = {"stream_id": stream["stream_id"], "state": "check-1"}
    assert a.http.post("/ssf/verify", json=body, headers=headers).status_code == 204
    # Asked again too soon (min_verification_interval).
    assert a.http.post("/ssf/verify", json=body, headers=headers).status_code == 429
    found = polled_events(a, stream["stream_id"], VERIFICATION, seconds=5)
    [claims] = [c for c in found if VERIFICATION in c["events"]]
    assert claims["events"][VERIFICATION] == {"state": "check-1"}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    a.http.delete("/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=headers)


# -- A revokes a session and tells B ----------------------------------------------------------


def test_a_revoked_session_reaches_the_other_bridge_once(bridges: Bridges) -> None:
    a, b = bridges.a, bridges.b
    who = person()
    at_b = b.defer(export_for(who, unique_record()))
    pushed = create_stream(
        a,
        "bridge-b",
        {
            "delivery": {"method": PUSH_METHOD, "endpoint_url": f"{b.oauth.url}/ssf/events"},
            "events_requested": [SESSION_REVOKED],
        },
    )
    assert pushed["aud"] == B_AUDIENCE
    watched = create_stream(a, "siem", {"events_requested": [SESSION_REVOKED]})

    event = {"reason_admin": {"en": "account compromised"}}
    idp_set = SIGNALS.set(SESSION_REVOKED, event, person_id(who), txn="incident-7")
    assert push(a.http, idp_set).status_code == 202

    # B ends the person's deferral once A's SET arrived (A queues it at its next pass).
    assert b.poll_until_settled(at_b, timeout=40).json()["error"] == "access_denied"
    found = polled_events(a, watched["stream_id"], SESSION_REVOKED)
    [claims] = [c for c in found if c["sub_id"] == {"format": "opaque", "id": who}]
    assert claims["txn"] == "incident-7"  # the same underlying cause (SSF 1.0 §4.1.8)
    assert claims["events"][SESSION_REVOKED]["reason_admin"] == {"en": "account compromised"}

    # Exactly one accepted delivery per event and stream.
    time.sleep(1)
    deliveries = rows(a, "SELECT status FROM outbox WHERE kind = 'ssf_push'")
    assert deliveries == [("done",)]
    at_b_revocations = [
        json.loads(data)
        for (data,) in rows(b, "SELECT data FROM audit_log WHERE event = 'subject_revoked'")
    ]
    assert [(r["subject"]["id"], r["source"]["transmitter"]) for r in at_b_revocations] == [
        (who, "bridge-a")
    ]
    headers = receiver_headers("bridge-b")
    a.http.delete("/ssf/streams", params={"stream_id": pushed["stream_id"]}, headers=headers)
    siem = receiver_headers("siem")
    a.http.delete("/ssf/streams", params={"stream_id": watched["stream_id"]}, headers=siem)


def test_the_bridges_own_events_about_access_requests(bridges: Bridges) -> None:
    a = bridges.a
    stream = create_stream(a, "siem", {})
    who = person()
    deferral = a.defer(export_for(who, unique_record()))
    task = request_of(a, "manager-1", who)
    assert task is not None
    view = a.approve("manager-1", task["id"])
    approval = view["items"][0]["result"]["approval"]["id"]
    issued = a.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    revoked = a.http.post(f"{APPROVALS}/{approval}/revoke", headers=a.approver_headers("manager-1"))
    assert revoked.status_code == 200, revoked.text

    found = polled_events(a, stream["stream_id"], APPROVAL_REVOKED)
    by_type = {next(iter(c["events"])): c for c in found if c["sub_id"].get("id") == who}
    filed = by_type[ACCESS_REQUEST_FILED]["events"][ACCESS_REQUEST_FILED]
    assert filed["access_request"] == task["id"]
    assert filed["subject"] == {"type": "user", "id": who}
    approved = by_type[ACCESS_REQUEST_APPROVED]["events"][ACCESS_REQUEST_APPROVED]
    assert approved["approval_id"] == approval
    assert by_type[APPROVAL_REVOKED]["events"][APPROVAL_REVOKED]["approval_id"] == approval
    # The token issued under the approval: its session revoked.
    token_claims = jwt.decode(issued.json()["access_token"], options={"verify_signature": False})
    sessions = [
        c
        for c in found
        if SESSION_REVOKED in c["events"] and c["sub_id"].get("format") == "complex"
    ]
    assert [s["sub_id"]["session"] for s in sessions] == [
        {"format": "jwt_id", "iss": ISSUER, "jti": token_claims["jti"]}
    ]
    a.http.delete(
        "/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=receiver_headers("siem")
    )


def rows(server: DTRServer, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(Path(server.database)) as db:
        return db.execute(query).fetchall()


def test_a_poll_acknowledges_what_the_receiver_took(bridges: Bridges) -> None:
    a = bridges.a
    stream = create_stream(a, "siem", {})
    headers = receiver_headers("siem")
    a.http.post("/ssf/verify", json={"stream_id": stream["stream_id"]}, headers=headers)
    first = poll(a, stream["stream_id"])
    assert len(first["sets"]) == 1 and first["moreAvailable"] is False
    again = poll(a, stream["stream_id"])
    assert again["sets"].keys() == first["sets"].keys()  # not acknowledged: sent again
    assert poll(a, stream["stream_id"], acks=list(first["sets"]))["sets"] == {}
    other = httpx.post(
        f"{a.oauth.url}/ssf/poll/{stream['stream_id']}",
        json={},
        headers=receiver_headers("bridge-b"),
    )
    assert other.status_code == 404
    a.http.delete("/ssf/streams", params={"stream_id": stream["stream_id"]}, headers=headers)
