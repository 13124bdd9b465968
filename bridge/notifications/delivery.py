"""The `approver_message` handler: send one message, then record that it was sent.

    read the row → by e-mail (`email.Mailer`) or the named webhook (`webhook.WebhookSender`;
    a webhook no longer configured: given up) → delivered: the audit entry `notified`
    (`record_notified`); retried or given up: the reason in the log

Every attempt that fails is logged with the recipient, the channel and the reason (never an
address, a URL or a password); the outbox worker logs the message it gives up on.
"""

from __future__ import annotations

import logging

from ..outbox import Delivered, GiveUp, Outcome, Retry
from ..settings import NotificationSettings
from ..store.contract import OutboxRow
from .approver_message import ApproverMessage
from .email import Mailer, compose
from .fan_out import NoticeService
from .routing import EMAIL
from .webhook import WebhookSender

log = logging.getLogger("bridge.notifications")


class MessageDelivery:
    def __init__(
        self,
        settings: NotificationSettings,
        *,
        mailer: Mailer | None,
        webhooks: WebhookSender,
        service: NoticeService,
        mail_domain: str,
    ) -> None:
        self._settings = settings
        self._mailer = mailer
        self._webhooks = webhooks
        self._service = service
        self._mail_domain = mail_domain

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            message = ApproverMessage.from_payload(row.payload)
        except ValueError:
            return GiveUp("unreadable approver_message payload")
        outcome = await self._send(message)
        delivery, notice = message.delivery, message.notice
        about = f"{notice.task_id} ({notice.reason}, step {notice.step + 1})"
        if isinstance(outcome, Delivered):
            log.info("notified %s by %s about %s", delivery.recipient, delivery.channel, about)
            try:
                await self._service.record_notified(notice, delivery.recipient, delivery.channel)
            except Exception:  # sent is sent: a second message would be worse than a gap
                log.exception("notified %s about %s, but not recorded", delivery.recipient, about)
        elif isinstance(outcome, Retry):
            log.warning(
                "could not notify %s by %s about %s (attempt %d, will retry): %s",
                delivery.recipient,
                delivery.channel,
                about,
                row.attempts,
                outcome.reason,
            )
        return outcome

    async def _send(self, message: ApproverMessage) -> Outcome:
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
