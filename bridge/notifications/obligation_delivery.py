"""Carrying out `notification` obligations (the AuthZEN obligations profile) through the
channels of `[notifications]`:

    the obligation   its members (`to`, `body`, `topic`) → every destination is one the
                     deployment configured: a person of `[notifications.people]` (by name,
                     or by their `email`), or a webhook of `[notifications.webhooks]`; one
                     that is not cannot be complied with (the permit is a denial), and no
                     address a PDP names is ever written to → one `obligation_notice` row
                     per recipient and channel, queued before the token is issued
    obligation_notice  send that one message: e-mail or webhook, retried by the outbox

"Carried out" is "queued durably": the outbox delivers with retries, after the token was
issued, so a delivery that fails for good is logged and given up, never taken back from the
token. That is where this differs from the profile, which counts a notification failed
after retries as not complied with.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from ..authzen.obligations import (
    NOTIFICATION,
    MalformedObligation,
    Obligation,
    notification_of,
)
from ..oauth.obligations import BaseObligationHandler, CannotComply, Enforcement
from ..outbox import GiveUp, Outcome
from ..settings import NotificationSettings
from ..store.contract import OutboxRow, OutboxStore
from .channels import Channels, log_outcome
from .obligation_notice import OBLIGATION_NOTICE, ObligationNotice, ObligationWords
from .routing import EMAIL, PERSON_PREFIX, Delivery, deliveries

log = logging.getLogger("bridge.notifications")


class NotificationObligations(BaseObligationHandler):
    """The `notification` obligation handler, for the token endpoint."""

    obligation_type = NOTIFICATION

    def __init__(
        self,
        settings: NotificationSettings,
        outbox: OutboxStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._clock = clock

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        self._deliveries(obligation)

    async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
        notification = notification_of(obligation)
        request = enforcement.request
        words = ObligationWords.of(
            notification.topic,
            notification.body,
            subject=f"{request.subject.type} {request.subject.id}",
            client=enforcement.client_id,
            what=f"{request.action.name} on {request.resource.type} {request.resource.id}",
        )
        notice_id = secrets.token_urlsafe(12)
        for delivery in self._deliveries(obligation):
            notice = ObligationNotice(notice_id, obligation.id, delivery, words)
            await self._outbox.enqueue(
                OBLIGATION_NOTICE, notice.payload(), self._clock(), dedupe_key=notice.dedupe_key
            )
        log.info("obligation %s: notice %s queued", obligation.id, notice_id)

    def _deliveries(self, obligation: Obligation) -> list[Delivery]:
        try:
            notification = notification_of(obligation)
        except MalformedObligation as malformed:
            raise CannotComply(str(malformed)) from None
        found: list[Delivery] = []
        for destination in notification.to:
            reached = self._reach(destination)
            if not reached:
                # Never an address of the PDP's choosing: the profile's security
                # considerations (the bridge's mail server is no relay).
                raise CannotComply(f"{destination[:64]!r} is not a configured recipient")
            found += reached
        return list(dict.fromkeys(found))

    def _reach(self, destination: str) -> list[Delivery]:
        settings = self._settings
        if destination in settings.people or destination in settings.webhooks:
            people = [destination] if destination in settings.people else []
            hooks = [destination] if destination in settings.webhooks else []
            return deliveries(settings, people, hooks)
        for name, person in settings.people.items():
            if person.email is not None and person.email.lower() == destination.lower():
                if settings.smtp is None:
                    return []
                return [Delivery(PERSON_PREFIX + name, EMAIL, person.email)]
        return []


class ObligationNoticeDelivery:
    """The `obligation_notice` outbox handler."""

    def __init__(self, channels: Channels) -> None:
        self._channels = channels

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            notice = ObligationNotice.from_payload(row.payload)
        except ValueError:
            return GiveUp("unreadable obligation_notice payload")
        outcome = await self._channels.send(
            notice.delivery, notice, notice.words.topic, notice.plain_text()
        )
        about = f"obligation {notice.obligation_id} (notice {notice.notice_id})"
        log_outcome(outcome, notice.delivery, about, row.attempts)
        return outcome
