"""A real SMTP server (aiosmtpd) for tests that send mail, collecting what it receives.

Why a real server: the product's mail goes out through an SMTP client over a socket, and the
parts worth testing (addresses, headers, encodings, multipart bodies, authentication) are
exactly what a stand-in would get wrong. aiosmtpd runs its own asyncio loop in a background
thread, on a free loopback port, so it serves both sync and async tests. Each message is
parsed with the standard library's `email` package into an `EmailMessage`.

    async def test_mail(smtp: SmtpServer) -> None:
        await send_the_mail(host=smtp.host, port=smtp.port)
        message = await smtp.wait_for_message_async(to="alice@example.test")
        assert message.subject == "Access approved"
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support._common import ServiceSetupError, free_loopback_port

WHAT = "SMTP test server"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server got it: the envelope, and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    # The login the client authenticated with, when the server requires authentication.
    login: str | None = None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The text/plain body (preferred over HTML in a multipart message), or ''."""
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())

    @property
    def html(self) -> str:
        """The text/html body, or ''."""
        part = self.message.get_body(preferencelist=("html",))
        return "" if part is None else str(part.get_content())


class SmtpServer:
    """The running server: where it listens, and the thread-safe list of what it received."""

    def __init__(self, host: str, port: int, username: str | None, password: str | None) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()

    # aiosmtpd calls these from its own thread.
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # SMTP carries lines ending in CRLF; parse with the newlines Python's text uses.
        raw = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        data = session.auth_data if session.authenticated else None
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            login=login,
        )
        with self._arrived:
            self._messages.append(received)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: accept exactly the configured login and password."""
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        # A refusal is not "handled" here, so aiosmtpd answers it with 535.
        return AuthResult(success=ok, handled=ok, auth_data=data if ok else None)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message received so far, oldest first (a copy)."""
        with self._arrived:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._arrived:
            self._messages.clear()

    def wait_for_message(
        self,
        match: Callable[[ReceivedMessage], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 10,
    ) -> ReceivedMessage:
        """The first received message that `match`es and (if given) was sent `to` someone.

        Waits up to `timeout` seconds for it; mail sent by a background task arrives late.
        """

        def wanted(message: ReceivedMessage) -> bool:
            if to is not None and to not in message.rcpt_tos:
                return False
            return match is None or match(message)

        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self._messages:
                    if wanted(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.rcpt_tos, m.subject) for m in self._messages]
                    raise AssertionError(f"no matching message within {timeout} s; received {seen}")
                self._arrived.wait(remaining)

    async def wait_for_message_async(
        self,
        match: Callable[[ReceivedMessage], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 10,
    ) -> ReceivedMessage:
        """`wait_for_message` for async tests: waits in a thread, so the loop keeps running
        (and with it whatever task of the test is sending the mail)."""
        return await asyncio.to_thread(self.wait_for_message, match, to=to, timeout=timeout)


@contextlib.contextmanager
def smtp_server(
    *, username: str | None = None, password: str | None = None
) -> Iterator[SmtpServer]:
    """Run an SMTP server on 127.0.0.1 until the block ends.

    With `username` and `password` it requires AUTH (PLAIN or LOGIN) before MAIL; plain-text
    auth is allowed without TLS since the connection never leaves the machine (aiosmtpd warns
    about that on each connection: filter "Requiring AUTH while not requiring TLS" in the test).
    """
    auth: dict[str, Any] = {}
    for _attempt in range(3):
        port = free_loopback_port()
        server = SmtpServer("127.0.0.1", port, username, password)
        if username is not None:
            auth = {
                "authenticator": server.authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        controller = Controller(
            server,
            hostname="127.0.0.1",
            port=port,
            server_hostname="smtp.test",
            ready_timeout=10,
            **auth,
        )
        try:
            controller.start()
        except OSError as exc:  # the port was taken between choosing it and binding it
            last: Exception = exc
            continue
        except Exception as exc:
            raise ServiceSetupError(f"{WHAT}: aiosmtpd did not start: {exc}") from exc
        try:
            yield server
        finally:
            controller.stop()
        return
    raise ServiceSetupError(f"{WHAT}: no free port could be bound: {last}")


@pytest.fixture(scope="session", name="smtp")
def _smtp() -> Iterator[SmtpServer]:
    """The session's SMTP server, without authentication. Match messages by recipient."""
    with smtp_server() as server:
        yield server
