"""The notifications part, assembled from settings.

    notifications = Notifications(settings, store, keys, ars.service)
    handlers.update(notifications.outbox_handlers())   # approval_needed, approver_message,
                                                       # consent_notice, consent_message,
                                                       # obligation_notice
    oauth.obligations.register(*notifications.obligation_handlers())   # notification

The `approval_needed` and `consent_notice` handlers are there whether or not
`[notifications]` names anyone: their rows are queued either way, and with nobody to tell
they are done at once. A PDP's `notification` obligations are carried out only where
`[notifications]` names people or webhooks to tell (`obligation_delivery`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..access_requests.notices import APPROVAL_NEEDED
from ..jose.signing_keys import SigningKeys
from ..outbound import Resolver, system_resolver
from ..outbox import Handler
from ..problems import Problem
from ..secret_files import SecretFileUnusable, read_secret_file
from ..settings import Settings
from ..store.contract import OutboxStore
from .approver_message import APPROVER_MESSAGE
from .channels import Channels
from .consent import CONSENT_MESSAGE, CONSENT_NOTICE
from .consent_delivery import ConsentDelivery, ConsentFanOut
from .delivery import MessageDelivery
from .email import PASSWORD_OPTION, Mailer
from .fan_out import FanOut, NoticeService
from .obligation_delivery import NotificationObligations, ObligationNoticeDelivery
from .obligation_notice import OBLIGATION_NOTICE
from .webhook import WebhookSender

log = logging.getLogger("bridge.notifications")


class Notifications:
    def __init__(
        self,
        settings: Settings,
        store: OutboxStore,
        keys: SigningKeys,
        service: NoticeService,
        *,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = system_resolver,
    ) -> None:
        options = settings.notifications
        smtp = options.smtp
        password_file = (
            settings.resolve(smtp.password_file)
            if smtp is not None and smtp.password_file is not None
            else None
        )
        for problem in problems(settings):
            log.error("%s", problem)  # each attempt is retried until the file is fixed
        self.fan_out = FanOut(
            options,
            issuer=settings.issuer,
            public_url=settings.server.public_url,
            service=service,
            outbox=store,
            clock=clock,
        )
        mailer = Mailer(smtp, password_file) if smtp is not None else None
        webhooks = WebhookSender(keys, settings.issuer, clock=clock, resolver=resolver)
        mail_domain = urlsplit(settings.issuer).hostname or "authzen-bridge.invalid"
        channels = Channels(options, mailer=mailer, webhooks=webhooks, mail_domain=mail_domain)
        self.delivery = MessageDelivery(channels, service)
        # A user told that a client asks to act for her (CIBA).
        self.consent_fan_out = ConsentFanOut(options, store, clock)
        self.consent_delivery = ConsentDelivery(channels)
        # What a PDP's `notification` obligation asks to be told, and to whom.
        self._obligations = NotificationObligations(options, store, clock)
        self.obligation_delivery = ObligationNoticeDelivery(channels)
        self._reachable = bool(options.people or options.webhooks)
        if options.templates:
            log.info(
                "notifications: %d people, %d webhooks, templates %s; e-mail %s",
                len(options.people),
                len(options.webhooks),
                ", ".join(sorted(options.templates)),
                f"via {smtp.host}:{smtp.port} ({smtp.security})" if smtp else "off",
            )

    def outbox_handlers(self) -> dict[str, Handler]:
        return {
            APPROVAL_NEEDED: self.fan_out,
            APPROVER_MESSAGE: self.delivery,
            CONSENT_NOTICE: self.consent_fan_out,
            CONSENT_MESSAGE: self.consent_delivery,
            OBLIGATION_NOTICE: self.obligation_delivery,
        }

    def obligation_handlers(self) -> list[NotificationObligations]:
        """The `notification` obligation handler, when there is anyone to tell."""
        return [self._obligations] if self._reachable else []


def problems(settings: Settings) -> list[Problem]:
    """What keeps e-mail from being sent as configured (the SMTP password file), for
    `bridge check` as for the start."""
    smtp = settings.notifications.smtp
    if smtp is None or smtp.password_file is None:
        return []
    path = settings.resolve(smtp.password_file)
    try:
        read_secret_file(path, PASSWORD_OPTION)
    except SecretFileUnusable as exc:
        return [Problem(str(path), None, str(exc))]
    return []
