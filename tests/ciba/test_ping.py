"""CIBA's ping mode over real HTTP (CIBA Core §10.2): a client registered for `ping` sends
its `client_notification_token`; once the request is decided, the bridge POSTs
`{"auth_req_id": ...}` to its `backchannel_client_notification_endpoint` with that token as
a Bearer credential, and the client then polls for the outcome. The ping goes through the
deferral part's pings (the outbox), made right for CIBA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ciba.helpers import PING_AGENT, CibaServer, answer, ciba_server, her_page, message
from tests.dtr_fixtures import PingListener, notification_token, payment_details
from tests.oauth_fixtures import assert_oauth_error

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def listener() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, listener: PingListener
) -> Iterator[CibaServer]:
    with ciba_server(tmp_path_factory.mktemp("ciba-ping"), ping_endpoint=listener.url) as running:
        yield running


def test_a_ping_client_must_send_its_notification_token(server: CibaServer) -> None:
    refused = server.ask("alice", payment_details("10.00"), client=PING_AGENT)
    assert_oauth_error(refused, "invalid_request")
    malformed = server.ask(
        "alice", payment_details("10.00"), client=PING_AGENT, client_notification_token="a b"
    )
    assert_oauth_error(malformed, "invalid_request")


@pytest.mark.parametrize("decision", ["approve", "decline"])
def test_the_client_is_pinged_once_decided_and_then_polls(
    server: CibaServer, listener: PingListener, decision: str
) -> None:
    token = notification_token()
    words = message()
    ack = server.asked(
        "alice",
        payment_details("20.00"),
        client=PING_AGENT,
        client_notification_token=token,
        binding_message=words,
    )
    assert listener.for_code(ack.auth_req_id) == []
    with server.signed_in("alice") as browser:
        path, _ = her_page(browser, words)
        assert answer(browser, path, decision).status_code == 303

    [ping] = listener.wait_for(ack.auth_req_id, 1)
    assert ping.method == "POST"
    assert ping.headers["authorization"] == f"Bearer {token}"
    assert ping.headers["content-type"] == "application/json"
    assert ping.json() == {"auth_req_id": ack.auth_req_id}
    assert ack.auth_req_id not in ping.path  # never in the URL

    outcome = server.poll(ack.auth_req_id, client=PING_AGENT)
    if decision == "approve":
        assert outcome.status_code == 200, outcome.text
    else:
        assert_oauth_error(outcome, "access_denied")
