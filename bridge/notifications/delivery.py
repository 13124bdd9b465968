"""The `approver_message` handler: send one message, then record that it was sent.

    read the row → by e-mail (`email.Mailer`) or the named webhook (`webhook.WebhookSender`;
    a webhook no longer configured: given up) → delivered: the audit entry `notified`
    (`record_notified`); retried or given up: the reason in the log

Every attempt that fails is logged with the recipient, the channel and the reason (never an
address, a URL or a password); the outbox worker logs the message it gives up on.
"""

from __future__ import annotations

import logging

from ..outbox import Delivered, GiveUp, Outcome
from ..store.contract import OutboxRow
from .approver_message import ApproverMessage
from .channels import Channels, log_outcome
from .fan_out import NoticeService
from .messages import plain_text, title

log = logging.getLogger("bridge.notifications")


class MessageDelivery:
    def __init__(self, channels: Channels, service: NoticeService) -> None:
        self._channels = channels
        self._service = service

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            message = ApproverMessage.from_payload(row.payload)
        except ValueError:
            return GiveUp("unreadable approver_message payload")
        delivery, notice = message.delivery, message.notice
        outcome = await self._channels.send(
            delivery, message, title(message.words), plain_text(message.words)
        )
        about = f"{notice.task_id} ({notice.reason}, step {notice.step + 1})"
        log_outcome(outcome, delivery, about, row.attempts)
        if isinstance(outcome, Delivered):
            try:
                await self._service.record_notified(notice, delivery.recipient, delivery.channel)
            except Exception:  # sent is sent: a second message would be worse than a gap
                log.exception("notified %s about %s, but not recorded", delivery.recipient, about)
        return outcome
