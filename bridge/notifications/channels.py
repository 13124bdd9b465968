"""Sending one message through the channel its delivery names, whatever the message is about
(an approver's notice, a person's CIBA request, a PDP's obligation): e-mail through
`email.Mailer`, or a webhook through `webhook.WebhookSender`. A channel no longer configured
is given up; the outcome is logged the same way for every kind (recipient, channel, reason:
never an address, a URL or a password).
"""

from __future__ import annotations

import logging

from ..outbox import Delivered, GiveUp, Outcome
from ..settings import NotificationSettings
from .email import Mailer, mail_of
from .routing import EMAIL, Delivery
from .webhook import WebhookMessage, WebhookSender

log = logging.getLogger("bridge.notifications")


class Channels:
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

    async def send(
        self, delivery: Delivery, message: WebhookMessage, subject: str, text: str
    ) -> Outcome:
        """`message` to `delivery`: by e-mail with `subject` and `text`, or signed to the
        named webhook."""
        if delivery.channel == EMAIL:
            smtp = self._settings.smtp
            if self._mailer is None or smtp is None or delivery.address is None:
                return GiveUp("e-mail is no longer configured ([notifications.smtp])")
            mail = mail_of(
                smtp, delivery.address, subject, text, message.message_id, self._mail_domain
            )
            return await self._mailer.send(mail)
        name = delivery.webhook
        hook = self._settings.webhooks.get(name) if name is not None else None
        if hook is None:
            return GiveUp(f"webhook {name!r} is not configured")
        return await self._webhooks.send(hook, message)


def log_outcome(outcome: Outcome, delivery: Delivery, about: str, attempts: int) -> None:
    if isinstance(outcome, Delivered):
        log.info("told %s by %s of %s", delivery.recipient, delivery.channel, about)
    else:
        log.warning(
            "could not tell %s by %s of %s (attempt %d): %s",
            delivery.recipient,
            delivery.channel,
            about,
            attempts,
            outcome.reason,
        )
