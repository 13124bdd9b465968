"""E-mail over SMTP (aiosmtplib): one plain-text message per recipient.

    mail_of: From (`smtp.from_address`), To (the person's address), Subject (the title),
    Date, a Message-ID derived from the message's dedupe key (the same on every attempt),
    `Auto-Submitted: auto-generated` (RFC 3834: no vacation replies) → connect (STARTTLS,
    TLS or, to loopback only, neither) → AUTH when a login is configured → send

Outcomes: sent → delivered. A connection that fails or times out (TLS included), a server
that offers no STARTTLS when `starttls` is configured (mail never goes out in clear
instead), a 4xx answer (the server's "try again later"), or a login refused (an operator
can fix the password file; it is read again for every connection) → retried with the
outbox's backoff. A 5xx answer to the sender, a recipient or the message (the server will
not take it) → given up.
"""

from __future__ import annotations

import logging
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import aiosmtplib

from ..outbox import Delivered, GiveUp, Outcome, Retry
from ..secret_files import SecretFileUnusable, read_secret_file
from ..settings import SmtpSettings

log = logging.getLogger("bridge.notifications")

PASSWORD_OPTION = "notifications.smtp.password_file"


def mail_of(
    smtp: SmtpSettings, to: str, subject: str, text: str, message_id: str, domain: str
) -> EmailMessage:
    """One plain-text e-mail; its Message-ID is the message's own (the same on every
    attempt, so a receiver drops a repeat)."""
    name, address = smtp.sender
    mail = EmailMessage()
    mail["From"] = Address(display_name=name, addr_spec=address)
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{message_id}@{domain}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(text)
    return mail


class Mailer:
    def __init__(self, smtp: SmtpSettings, password_file: Path | None) -> None:
        """`password_file`: `smtp.password_file`, resolved from the configuration's folder."""
        self._smtp = smtp
        self._password_file = password_file

    async def send(self, mail: EmailMessage) -> Outcome:
        smtp = self._smtp
        password = None
        if self._password_file is not None:
            try:
                password = read_secret_file(self._password_file, PASSWORD_OPTION)
            except SecretFileUnusable as exc:
                log.error("%s", exc)
                return Retry(str(exc))
        try:
            await aiosmtplib.send(
                mail,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=password,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                timeout=smtp.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            return _by_code(min(codes, default=550), "recipient refused")
        except aiosmtplib.SMTPAuthenticationError as exc:
            return Retry(f"SMTP login refused ({exc.code}): check the username and password")
        except aiosmtplib.SMTPConnectResponseError as exc:
            return Retry(f"SMTP server refused the connection ({exc.code})")
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, "SMTP server answered")
        except OSError as exc:  # refused, reset, timed out, TLS failed
            return Retry(f"SMTP server unreachable: {type(exc).__name__}")
        except aiosmtplib.SMTPException as exc:  # e.g. no STARTTLS offered: never sent in clear
            return Retry(f"SMTP failed: {exc}")
        return Delivered()


def _by_code(code: int, what: str) -> Outcome:
    if 400 <= code < 500:
        return Retry(f"{what} {code} (temporary)")
    return GiveUp(f"{what} {code}")
