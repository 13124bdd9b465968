"""The two outbox handlers of a user's consent notice (`consent`):

    consent_notice   read the notice → she is one of `[notifications.people]` (same name,
                     same subject type; else nobody is told) → one `consent_message` row per
                     channel of hers, each under its dedupe key
    consent_message  send that one message: e-mail (`email.Mailer`) or her webhook
                     (`webhook.WebhookSender`); a channel no longer configured: given up

As for approvers, every failed attempt is logged with the recipient, the channel and the
reason (never an address or a URL), and the outbox backs off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from ..outbox import Delivered, GiveUp, Outcome
from ..settings import NotificationSettings, SmtpSettings
from ..store.contract import OutboxRow, OutboxStore
from .consent import CONSENT_MESSAGE, ConsentMessage, ConsentNotice, plain_text, title
from .email import Mailer
from .routing import EMAIL, deliveries
from .webhook import WebhookSender

log = logging.getLogger("bridge.notifications")


class ConsentFanOut:
    """The `consent_notice` handler."""

    def __init__(
        self,
        settings: NotificationSettings,
        outbox: OutboxStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._clock = clock

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            notice = ConsentNotice.from_payload(row.payload)
        except (ValueError, KeyError, TypeError):
            return GiveUp("unreadable consent_notice payload")
        person = self._settings.people.get(notice.person)
        if person is None or person.type != notice.subject_type:
            log.info("consent request %s: nobody to tell", notice.request_id)
            return Delivered()
        queued = 0
        for delivery in deliveries(self._settings, [notice.person], []):
            message = ConsentMessage(notice, delivery)
            queued += await self._outbox.enqueue(
                CONSENT_MESSAGE, message.payload(), self._clock(), dedupe_key=message.dedupe_key
            )
        log.info("consent request %s: %d message(s) queued", notice.request_id, queued)
        return Delivered()


class ConsentDelivery:
    """The `consent_message` handler."""

    def __init__(
        self,
        settings: NotificationSettings,
        *,
        mailer: Mailer | None,
        webhooks: WebhookSender,
        mail_domain: str,
    ) -> None:
        self._settings = settings
        self._mailer = mailer
        self._webhooks = webhooks
        self._mail_domain = mail_domain

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            message = ConsentMessage.from_payload(row.payload)
        except ValueError:
            return GiveUp("unreadable consent_message payload")
        outcome = await self._send(message)
        delivery = message.delivery
        about = f"consent request {message.notice.request_id}"
        if isinstance(outcome, Delivered):
            log.info("told %s by %s about %s", delivery.recipient, delivery.channel, about)
        else:
            log.warning(
                "could not tell %s by %s about %s (attempt %d): %s",
                delivery.recipient,
                delivery.channel,
                about,
                row.attempts,
                outcome.reason,
            )
        return outcome

    async def _send(self, message: ConsentMessage) -> Outcome:
        delivery = message.delivery
        if delivery.channel == EMAIL:
            smtp = self._settings.smtp
            if self._mailer is None or smtp is None or delivery.address is None:
                return GiveUp("e-mail is no longer configured ([notifications.smtp])")
            return await self._mailer.send(compose(message, smtp, self._mail_domain))
        name = delivery.webhook
        hook = self._settings.webhooks.get(name) if name is not None else None
        if hook is None:
            return GiveUp(f"webhook {name!r} is not configured")
        return await self._webhooks.send(hook, message)


def compose(message: ConsentMessage, smtp: SmtpSettings, domain: str) -> EmailMessage:
    """The e-mail for one `consent_message` addressed to an e-mail address."""
    assert message.delivery.address is not None
    name, address = smtp.sender
    mail = EmailMessage()
    mail["From"] = Address(display_name=name, addr_spec=address)
    mail["To"] = message.delivery.address
    mail["Subject"] = title(message.notice.words)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{message.message_id}@{domain}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(plain_text(message.notice.words))
    return mail
