"""Each rule of the CIBA binding on its own, over real HTTP: who may ask and how (client
authentication, the grant, `openid`, one hint naming a known user, the binding message, the
expiry), what the poll answers (expiry, a second redemption, the DPoP key of the request), a
repeated request, and her page (the binding message as text, nobody else's request)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.arap_profile_fixtures import demo_store
from tests.ciba.helpers import (
    AGENT,
    CibaServer,
    answer,
    approve_as_alice,
    auth_headers,
    ciba_server,
    her_page,
    message,
)
from tests.dtr_fixtures import DEFERRED_GRANT, payment_details
from tests.front_door.helpers import hidden
from tests.oauth_fixtures import DPoPKey, assert_oauth_error

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CibaServer]:
    with ciba_server(tmp_path_factory.mktemp("ciba-rules")) as running:
        yield running


def small_payment(creditor: str = "Corner Shop") -> list[dict[str, Any]]:
    return payment_details("12.50", creditor=creditor)


# -- who may ask, and how -------------------------------------------------------------------


def test_an_unknown_login_hint_is_unknown_user_id(server: CibaServer) -> None:
    for hint in ("nobody-here", "alice\n", "ALICE"):
        refused = server.ask(hint, small_payment())
        assert_oauth_error(refused, "unknown_user_id")


def test_without_client_authentication_it_is_invalid_client(server: CibaServer) -> None:
    refused = server.ask("alice", small_payment(), client=None)
    assert_oauth_error(refused, "invalid_client")
    wrong = server.ask(
        "alice", small_payment(), client=None, headers={"Authorization": "Basic Y2liYS1hZ2VudDp4"}
    )
    assert_oauth_error(wrong, "invalid_client", status=401)


def test_a_public_client_is_refused(server: CibaServer) -> None:
    refused = server.ask("alice", small_payment(), client="demo-public", key=DPoPKey())
    body = assert_oauth_error(refused, "invalid_client")
    assert "authentication" in body["error_description"]


def test_a_client_without_the_grant_is_unauthorized(server: CibaServer) -> None:
    refused = server.ask("alice", small_payment(), client="demo-agent")
    assert_oauth_error(refused, "unauthorized_client")


def test_scope_must_include_openid(server: CibaServer) -> None:
    for scope in (None, "customer_records:read", "openidx"):
        refused = server.ask("alice", small_payment(), scope=scope)
        assert_oauth_error(refused, "invalid_scope")
    # `openid` alone asks for nothing the bridge decides: it issues no ID token.
    nothing = server.ask("alice", None)
    assert_oauth_error(nothing, "invalid_request")


def test_a_scope_policy_denies_is_refused_as_the_token_endpoint_refuses_it(
    server: CibaServer,
) -> None:
    # The demo policies let only the demo clients read customer records for a person.
    refused = server.ask("alice", None, scope="openid customer_records:read")
    assert_oauth_error(refused, "invalid_scope")


def test_exactly_one_hint_and_only_login_hint(server: CibaServer) -> None:
    both = server.ask("alice", small_payment(), id_token_hint="eyJ.e30.sig")
    assert_oauth_error(both, "invalid_request")
    none = server.ask(None, small_payment())
    assert_oauth_error(none, "invalid_request")
    token = server.ask(None, small_payment(), login_hint_token="eyJ.e30.sig")
    assert_oauth_error(token, "invalid_request")


def test_a_binding_message_must_be_a_short_line_of_text(server: CibaServer) -> None:
    for bad in ("two\nlines", "x" * 101, "   "):
        refused = server.ask("alice", small_payment(), binding_message=bad)
        assert_oauth_error(refused, "invalid_binding_message")


def test_requested_expiry_is_a_positive_integer_and_bounded(server: CibaServer) -> None:
    for bad in ("0", "-5", "1.5", "soon", "9" * 12):
        refused = server.ask("alice", small_payment(), requested_expiry=bad)
        assert_oauth_error(refused, "invalid_request")
    short = server.asked("alice", small_payment(message()), requested_expiry="30")
    assert short.expires_in <= 30
    # Longer than `ciba.max_expiry_seconds` (3 h by default) is not granted.
    long = server.asked("alice", small_payment(message()), requested_expiry="999999")
    assert 10_000 < long.expires_in <= 10_800


# -- what the poll answers ------------------------------------------------------------------


def test_past_its_expiry_the_poll_answers_expired_token(server: CibaServer) -> None:
    ack = server.asked("alice", small_payment(message()), requested_expiry="2")
    assert ack.expires_in <= 2
    time.sleep(ack.expires_in + 0.5)
    expired = server.poll(ack.auth_req_id)
    assert_oauth_error(expired, "expired_token")


def test_a_redeemed_auth_req_id_is_invalid_grant(server: CibaServer) -> None:
    words = message()
    ack = server.asked("alice", small_payment(), binding_message=words)
    approve_as_alice(server, words)
    assert server.poll_until_settled(ack).status_code == 200
    replayed = server.poll(ack.auth_req_id)
    body = assert_oauth_error(replayed, "invalid_grant")
    assert "redeemed" in body["error_description"]
    unknown = server.poll("x" * 43)
    assert_oauth_error(unknown, "invalid_grant")


def test_an_auth_req_id_is_no_deferral_code_and_cannot_be_cancelled(server: CibaServer) -> None:
    words = message()
    ack = server.asked("alice", small_payment(), binding_message=words)
    as_deferral = server.http.post(
        "/token",
        data={"grant_type": DEFERRED_GRANT, "deferral_code": ack.auth_req_id},
        headers=auth_headers(AGENT),
    )
    body = assert_oauth_error(as_deferral, "invalid_grant")
    assert body["error_description"] == "unknown deferral code"
    revoked = server.http.post(
        "/revoke",
        data={
            "token": ack.auth_req_id,
            "token_type_hint": "urn:ietf:params:oauth:token-type:deferral-code",
        },
        headers=auth_headers(AGENT),
    )
    assert revoked.status_code == 200
    approve_as_alice(server, words)
    assert server.poll_until_settled(ack).status_code == 200  # CIBA has no cancellation


def test_a_dpop_bound_request_is_polled_with_its_key_only(server: CibaServer) -> None:
    key, other = DPoPKey(), DPoPKey()
    words = message()
    ack = server.asked("alice", small_payment(), binding_message=words, key=key)
    without = server.poll(ack.auth_req_id)
    assert_oauth_error(without, "invalid_dpop_proof")
    wrong = server.poll(ack.auth_req_id, key=other)
    assert_oauth_error(wrong, "invalid_dpop_proof")
    approve_as_alice(server, words)
    time.sleep(ack.interval)
    still_without = server.poll(ack.auth_req_id)
    assert_oauth_error(still_without, "invalid_dpop_proof")
    token = server.poll_until_settled(ack, key=key)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "DPoP"
    _, claims = server.dtr.oauth.verify(body["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}


def test_a_proof_for_another_url_binds_nothing(server: CibaServer) -> None:
    key = DPoPKey()
    refused = server.ask(
        "alice", small_payment(), headers={"DPoP": key.proof(htu="https://bridge.test/token")}
    )
    assert_oauth_error(refused, "invalid_dpop_proof")


# -- a repeated request -----------------------------------------------------------------------


def test_a_repeated_identical_request_gets_the_same_auth_req_id(server: CibaServer) -> None:
    words = message()
    first = server.asked("alice", small_payment("Bakery"), binding_message=words)
    again = server.asked("alice", small_payment("Bakery"), binding_message=words)
    assert again.auth_req_id == first.auth_req_id
    assert again.expires_in <= first.expires_in
    other_message = server.asked("alice", small_payment("Bakery"), binding_message=message())
    other_payment = server.asked("alice", small_payment("Butcher"), binding_message=words)
    key = server.asked("alice", small_payment("Bakery"), binding_message=words, key=DPoPKey())
    assert len({first.auth_req_id, other_message.auth_req_id, other_payment.auth_req_id}) == 3
    assert key.auth_req_id != first.auth_req_id
    # She is asked once for the repeated request: the first (and its repeat), the other
    # payment and the request bound to a key say this message.
    with server.signed_in("alice") as browser:
        listing = browser.get("/ciba/requests").text
    assert listing.count(words) == 3


# -- her page ---------------------------------------------------------------------------------


def test_the_binding_message_is_shown_as_text(server: CibaServer) -> None:
    words = 'Pay <b>now</b> & "quickly" ' + message()
    server.asked("alice", small_payment(), binding_message=words)
    with server.signed_in("alice") as browser:
        _, page = her_page(browser, words)
    assert (
        '<p class="binding" id="binding-message">'
        "Pay &lt;b&gt;now&lt;/b&gt; &amp; &#34;quickly&#34; " + words.split('" ')[1] + "</p>"
    ) in page
    assert "<b>now</b>" not in page


def test_a_request_whose_deferral_ended_is_no_longer_listed(server: CibaServer) -> None:
    words = message()
    ack = server.asked("alice", small_payment(), binding_message=words)
    with server.signed_in("alice") as browser:
        path, _ = her_page(browser, words)
        # The deferral ends on the bridge's side (as when an event ends her sessions).
        with contextlib.closing(sqlite3.connect(server.dtr.database)) as db, db:
            db.execute(
                "UPDATE deferrals SET status = 'denied' WHERE code_hash = "
                "(SELECT code_hash FROM ciba_requests WHERE binding_message = ?)",
                (words,),
            )
        assert words not in browser.get("/ciba/requests").text
        assert "This request has ended." in browser.get(path).text
    assert_oauth_error(server.poll(ack.auth_req_id), "access_denied")


def test_alice_cannot_answer_anothers_request(server: CibaServer) -> None:
    words = message()
    ack = server.asked("manager-1", small_payment(), binding_message=words)
    with server.signed_in("manager-1") as manager:
        path, _ = her_page(manager, words)
    with server.signed_in("alice") as alice:
        assert words not in alice.get("/ciba/requests").text
        shown = alice.get(path)
        assert shown.status_code == 404 and words not in shown.text
        csrf = alice.get("/ciba/requests")
        taken = answer_without_page(alice, path, csrf.text)
        assert taken.status_code == 404
    time.sleep(ack.interval)
    assert_oauth_error(server.poll(ack.auth_req_id), "authorization_pending")
    with server.signed_in("manager-1") as manager:
        assert "Waiting for your answer." in manager.get(path).text
        assert answer(manager, path, "approve").status_code == 303
    token = server.poll_until_settled(ack)
    _, claims = server.dtr.oauth.verify(token.json()["access_token"])
    assert claims["sub"] == "manager-1"


def test_signed_out_her_page_asks_her_to_sign_in(server: CibaServer) -> None:
    page = server.http.get("/ciba/requests/some-id", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=%2Fciba%2Frequests%2Fsome-id"


def answer_without_page(browser: Any, path: str, any_page: str) -> Any:
    """Post an answer to `path` with the CSRF token of another page of the session."""
    form = {"csrf_token": hidden(any_page, "csrf_token"), "decision": "approve"}
    return browser.post(path + "/decision", data=form)


def test_a_denial_only_a_request_form_could_lift_is_refused_as_a_plain_one(
    tmp_path: Path,
) -> None:
    # finance's approval needs a reason in its request form, which a backchannel request
    # cannot give: nothing can be filed, so the large payment is refused at once (as at the
    # token endpoint), not left to fail as a server error.
    store = demo_store(tmp_path)
    (store / "approvals.toml").write_text(
        '[templates.finance]\ndescription = "Finance approves large payments."\n'
        'request_schema = "why.json"\n',
        encoding="utf-8",
    )
    (store / "forms").mkdir()
    form = {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "title": "Why"}},
    }
    (store / "forms" / "why.json").write_text(json.dumps(form), encoding="utf-8")
    with ciba_server(tmp_path / "bridge", policies=store) as running:
        refused = running.ask("alice", payment_details("5000.00", creditor="Acme GmbH"))
        assert_oauth_error(refused, "invalid_authorization_details")
        # A payment no approval is needed for still goes to alice.
        running.asked("alice", small_payment())
