"""The two outbox handlers of a user's consent notice (`consent`):

    consent_notice   read the notice → she is one of `[notifications.people]` (same name,
                     same subject type; else nobody is told) → one `consent_message` row per
                     channel of hers, each under its dedupe key
    consent_message  send that one message through her channel (`channels.Channels`); a
                     channel no longer configured: given up

As for approvers, every failed attempt is logged with the recipient, the channel and the
reason (never an address or a URL), and the outbox backs off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..outbox import Delivered, GiveUp, Outcome
from ..settings import NotificationSettings
from ..store.contract import OutboxRow, OutboxStore
from .channels import Channels, log_outcome
from .consent import CONSENT_MESSAGE, ConsentMessage, ConsentNotice, plain_text, title
from .routing import deliveries

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

    def __init__(self, channels: Channels) -> None:
        self._channels = channels

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            message = ConsentMessage.from_payload(row.payload)
        except ValueError:
            return GiveUp("unreadable consent_message payload")
        words = message.notice.words
        outcome = await self._channels.send(
            message.delivery, message, title(words), plain_text(words)
        )
        log_outcome(
            outcome, message.delivery, f"consent request {message.notice.request_id}", row.attempts
        )
        return outcome
