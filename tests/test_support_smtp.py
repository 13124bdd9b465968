"""The SMTP fixture is a real server: aiosmtplib delivers to it, and it parses what came."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

import aiosmtplib
import pytest

from tests.support.smtp import SmtpServer, smtp_server

pytest_plugins = ["tests.support.plugin"]


def _message(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bridge <bridge@example.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Your access request was approved.\nRequest: ar-42\n")
    message.add_alternative("<p>Your access request was <b>approved</b>.</p>", subtype="html")
    return message


async def test_message_arrives_with_subject_body_and_recipients(smtp: SmtpServer) -> None:
    # The server is the session's: other tests' mail may be there too, so a recipient of
    # this test's own.
    to = f"alice-{uuid.uuid4().hex[:8]}@example.test"
    message = _message(to, "Zugriff bestätigt: ar-42")
    errors, _response = await aiosmtplib.send(
        message,
        hostname=smtp.host,
        port=smtp.port,
        recipients=[to, "audit@example.test"],
    )
    assert errors == {}

    received = await smtp.wait_for_message_async(to=to, timeout=5)
    assert received.mail_from == "bridge@example.test"
    assert received.rcpt_tos == (to, "audit@example.test")
    assert received.subject == "Zugriff bestätigt: ar-42"  # non-ASCII survives encoding
    assert received.text == "Your access request was approved.\nRequest: ar-42\n"
    assert "<b>approved</b>" in received.html
    assert received.message["To"] == to


async def test_wait_for_message_fails_clearly_when_nothing_matches(smtp: SmtpServer) -> None:
    with pytest.raises(AssertionError, match=r"no matching message within 0\.2 s"):
        smtp.wait_for_message(to="nobody@example.test", timeout=0.2)


# aiosmtpd warns about AUTH without TLS on every connection; here it never leaves loopback.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_server_with_authentication() -> None:
    with smtp_server(username="mailer", password="mail-secret") as server:
        message = _message("bob@example.test", "Signed in")
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await aiosmtplib.send(message, hostname=server.host, port=server.port)
        assert refused.value.code == 530  # authentication required
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username="mailer",
                password="wrong",
                start_tls=False,
            )
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username="mailer",
            password="mail-secret",
            start_tls=False,
        )
        received = await server.wait_for_message_async(to="bob@example.test", timeout=5)
        assert received.login == "mailer"
        assert server.messages == [received]
