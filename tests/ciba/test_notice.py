"""The user is told of a CIBA request through the notification channels of
`[notifications.people.<name>]`: an e-mail through a real SMTP server (aiosmtpd), and a signed
notice to her own webhook, each with the link to her page, the client, the binding message
and what is asked in words. Someone the configuration does not name is not told."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from tests.ciba.helpers import AGENT, CibaServer, ciba_server, message
from tests.dtr_fixtures import PingListener, payment_details
from tests.support.smtp import SmtpServer

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(scope="module")
def webhook() -> Iterator[PingListener]:
    with PingListener() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer, webhook: PingListener
) -> Iterator[CibaServer]:
    notifications = f"""
[notifications.smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from_address = "AuthZEN Bridge <bridge@bridge.test>"
timeout_seconds = 5

[notifications.webhooks.alice-phone]
url = "{webhook.url}"
allow_private_network = true

[notifications.people.alice]
email = "alice@example.test"
webhook = "alice-phone"
"""
    with ciba_server(tmp_path_factory.mktemp("ciba-notice"), extra=notifications) as running:
        yield running


def test_she_gets_an_email_with_the_link_to_her_page(server: CibaServer, smtp: SmtpServer) -> None:
    words = message()
    server.asked("alice", payment_details("42.00", creditor="Book Shop"), binding_message=words)
    mail = smtp.wait_for_message(lambda m: words in m.text, to="alice@example.test")
    assert mail.subject.strip() == f"{AGENT} asks to act for you"
    assert mail.message["From"] == "AuthZEN Bridge <bridge@bridge.test>"
    text = mail.text
    assert "  - Pay 42.00 EUR to Book Shop" in text
    assert f"The application shows: {words}" in text
    links = [line for line in text.splitlines() if line.startswith(server.url + "/ciba/requests/")]
    assert len(links) == 1, text
    with server.signed_in("alice") as browser:
        page = browser.get(links[0].removeprefix(server.url))
    assert page.status_code == 200
    assert words in page.text and "Pay 42.00 EUR to Book Shop" in page.text


def notices(server: CibaServer, webhook: PingListener, words: str) -> list[Any]:
    """The verified JWS notices at the webhook that carry the binding message `words`."""
    keys = KeySet.import_key_set(server.dtr.oauth.jwks())  # type: ignore[arg-type]
    found = []
    for delivery in list(webhook.deliveries):
        assert delivery.headers["content-type"] == "application/jose"
        token = jws.deserialize_compact(delivery.body.decode(), keys)
        if words in json.loads(token.payload)["consent_notice"]["binding_message"]:
            found.append(token)
    return found


def test_her_webhook_gets_a_signed_notice(server: CibaServer, webhook: PingListener) -> None:
    words = message()
    server.asked("alice", payment_details("43.00"), binding_message=words)
    deadline = time.monotonic() + 10
    while not (found := notices(server, webhook, words)):
        assert time.monotonic() < deadline, "no notice reached her webhook"
        time.sleep(0.05)
    [token] = found
    assert token.protected["typ"] == "consent-notice+jwt"
    claims = json.loads(token.payload)
    notice = claims["consent_notice"]
    assert notice["recipient"] == "person:alice"
    assert notice["binding_message"] == words
    assert notice["what"] == ["Pay 43.00 EUR to Merchant A"]
    assert notice["page_url"].startswith(server.url + "/ciba/requests/")
    assert claims["aud"] == webhook.url


def test_someone_not_named_is_not_told(server: CibaServer, smtp: SmtpServer) -> None:
    words = message()
    server.asked("manager-1", payment_details("44.00"), binding_message=words)
    mine = message()
    server.asked("alice", payment_details("45.00"), binding_message=mine)
    # Hers arrives; by then the other notice, queued first, was handled and sent nothing.
    smtp.wait_for_message(lambda m: mine in m.text, to="alice@example.test")
    assert not [m for m in smtp.messages if words in m.text]
