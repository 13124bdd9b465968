"""Continuous evaluation at introspection (docs/events.md): with
`oauth.introspection_reevaluates`, introspection asks the policies again whether a live
token's access is still permitted; a policy edit that removes a permit makes the token
inactive (for good) and the transmitter sends CAEP `token-claims-change`. A token issued under
an approval stays active while the approval stands, and not a moment after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bridge.events.event_types import TOKEN_CLAIMS_CHANGE
from bridge.settings import load_settings
from tests.approvals.helpers import demo_policies, export_for, person, request_of
from tests.conftest import serve
from tests.dtr_fixtures import APPROVALS, DTRServer, dtr_clients, dtr_config_text, unique_record
from tests.events.helpers import wait_until
from tests.oauth_fixtures import (
    IDP,
    ISSUER,
    OAuthServer,
    exchange_form,
    idp_token,
    read_details,
    server_config,
)

MANAGEMENT = "https://bridge.test/ssf"
AUDIENCE = "https://siem.test"
DELEGATED_READ = '@id("delegated-read-customer-records")'


def config() -> str:
    return f"""
[events.transmitter]
enabled = true
audience = "{MANAGEMENT}"

[[events.transmitter.receivers]]
name = "siem"
issuer = "{IDP}"
subject = "siem"
audience = "{AUDIENCE}"
"""


@contextlib.contextmanager
def reevaluating_server(folder: Path, store: Path, *, cache: float) -> Iterator[DTRServer]:
    """The approvals tests' bridge on `store`, transmitting to a SIEM, with
    `oauth.introspection_reevaluates` on and its answers cached `cache` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = server_config(
        folder, clients=dtr_clients(), policies=store, extra=dtr_config_text(folder) + config()
    )
    settings = load_settings(path)
    oauth = settings.oauth.model_copy(
        update={"introspection_reevaluates": True, "introspection_cache_seconds": cache}
    )
    settings = settings.model_copy(update={"oauth": oauth})
    with serve(settings) as thread, httpx.Client(base_url=thread.url, timeout=10) as http:
        yield DTRServer(OAuthServer(thread, http, path, store), settings, folder)


@contextlib.contextmanager
def decisions_asked(server: DTRServer) -> Iterator[list[str]]:
    """Every call the running bridge makes to its embedded PDP meanwhile (the engine
    itself, beneath the decision points wrapped around it)."""
    engine = server.oauth.thread.app.state.pdps["default"]
    asked: list[str] = []
    for name in ("evaluate", "evaluations"):
        original = getattr(engine, name)

        async def counting(*args: Any, _call: Any = original, _name: str = name) -> Any:
            asked.append(_name)
            return await _call(*args)

        setattr(engine, name, counting)
    try:
        yield asked
    finally:
        for name in ("evaluate", "evaluations"):
            delattr(engine, name)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return demo_policies(tmp_path)


@pytest.fixture
def server(tmp_path: Path, store: Path) -> Iterator[DTRServer]:
    with reevaluating_server(tmp_path / "bridge", store, cache=60) as running:
        yield running


def read_token(server: DTRServer, who: str) -> str:
    form = exchange_form(read_details("cust-0001"), subject_token=idp_token(who))
    response = server.token(form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def read_evaluation(who: str) -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": who},
        "action": {"name": "read"},
        "resource": {"type": "CustomerRecord", "id": "cust-0001"},
        "context": {"client_id": "demo-agent"},
    }


def remove_permit(store: Path, policy_id: str) -> str:
    """Take the policy `policy_id` out of the store's file; the text it had."""
    path = store / "policies.cedar"
    text = path.read_text(encoding="utf-8")
    start = text.index(policy_id)
    end = text.index(";", start) + 1
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    return text


def siem_headers() -> dict[str, str]:
    return {"Authorization": "Bearer " + idp_token("siem", aud=MANAGEMENT)}


def token_claims_changes(server: DTRServer, stream_id: str) -> list[dict[str, Any]]:
    """The `token-claims-change` SETs waiting on the stream (their claims, unverified here:
    tests/events/test_transmitter.py verifies SETs)."""
    response = server.http.post(
        f"/ssf/poll/{stream_id}", json={"returnImmediately": True}, headers=siem_headers()
    )
    assert response.status_code == 200, response.text
    claims = [
        jwt.decode(token, options={"verify_signature": False})
        for token in response.json()["sets"].values()
    ]
    return [c for c in claims if TOKEN_CLAIMS_CHANGE in c["events"]]


def test_a_policy_edit_that_removes_a_permit_makes_a_live_token_inactive(
    server: DTRServer, store: Path
) -> None:
    stream = server.http.post("/ssf/streams", json={}, headers=siem_headers()).json()
    who, other = person(), person()
    token, others = read_token(server, who), read_token(server, other)
    with decisions_asked(server) as asked:
        assert server.oauth.introspect(token)["active"] is True
        assert server.oauth.introspect(token)["active"] is True  # answered from the cache
    assert len(asked) == 1, asked

    original = remove_permit(store, DELEGATED_READ)
    server.oauth.wait_for_decision(read_evaluation(who), False)
    # The store's version changed: the cached answer is not used.
    assert server.oauth.introspect(token) == {"active": False}
    assert server.oauth.introspect(others) == {"active": False}

    # For good: putting the permit back does not bring the token back.
    (store / "policies.cedar").write_text(original, encoding="utf-8")
    server.oauth.wait_for_decision(read_evaluation(who), True)
    assert server.oauth.introspect(token) == {"active": False}
    assert server.oauth.introspect(read_token(server, who))["active"] is True

    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    changes = wait_until(
        "token-claims-change", lambda: token_claims_changes(server, stream["stream_id"])
    )
    [change] = [c for c in changes if c["sub_id"]["jti"] == jti]
    assert change["sub_id"] == {"format": "jwt_id", "iss": ISSUER, "jti": jti}
    assert change["events"][TOKEN_CLAIMS_CHANGE]["claims"] == {"authorization_details": []}


def test_a_token_under_an_approval_stays_active_while_the_approval_stands(
    server: DTRServer,
) -> None:
    who = person()
    deferral = server.defer(export_for(who, unique_record()))
    task = request_of(server, "manager-1", who)
    assert task is not None
    view = server.approve("manager-1", task["id"])
    approval = view["items"][0]["result"]["approval"]["id"]
    issued = server.poll_until_settled(deferral)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    # Asked again with its approval: the policies still permit it.
    assert server.oauth.introspect(token)["active"] is True
    revoked = server.http.post(
        f"{APPROVALS}/{approval}/revoke", headers=server.approver_headers("manager-1")
    )
    assert revoked.status_code == 200, revoked.text
    assert server.oauth.introspect(token) == {"active": False}


def test_without_a_cache_every_introspection_asks(tmp_path: Path, store: Path) -> None:
    with reevaluating_server(tmp_path / "uncached", store, cache=0) as uncached:
        who = person()
        token = read_token(uncached, who)
        with decisions_asked(uncached) as asked:
            assert uncached.oauth.introspect(token)["active"] is True
            assert uncached.oauth.introspect(token)["active"] is True
        assert len(asked) == 2, asked
        remove_permit(store, DELEGATED_READ)
        uncached.oauth.wait_for_decision(read_evaluation(who), False)
        assert uncached.oauth.introspect(token) == {"active": False}
