"""The `approval_needed` handler: from one notice to one queued message per recipient and
channel.

    read the notice → whom the configuration names for its template and reason (nobody:
    done) → the request in words (gone, or settled since: done, nobody told) → for `decide`
    and `emergency_review`, the named people policy lets act on it now → one
    `approver_message` row per (recipient, channel), under its dedupe key

The rows are queued one by one, each under a key the store keeps once: a fan-out that
fails half-way is retried whole and queues only what is missing, and two replicas fanning
out the same notice queue each message once. A decision point that cannot be reached is
worth a retry; the outbox backs off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..access_requests.approvers import Approver
from ..access_requests.notices import ApprovalNeeded, NoticeSummary
from ..access_requests.problems import TaskExpired, UnknownTask
from ..authzen.errors import PDPError
from ..outbox import Delivered, GiveUp, Outcome, Retry
from ..settings import NotificationSettings
from ..store.contract import OutboxRow, OutboxStore
from .approver_message import APPROVER_MESSAGE, ApproverMessage
from .messages import NoticeWords
from .routing import Candidates, candidates, deliveries, is_current

log = logging.getLogger("bridge.notifications")


class NoticeService(Protocol):
    """What this part asks of the access request service
    (`access_requests.service.AccessRequestService`)."""

    async def approvers_to_tell(
        self, notice: ApprovalNeeded, candidates: Sequence[Approver]
    ) -> list[Approver]:
        """The candidates policy lets act on the notice now; [] when it is stale."""
        ...

    async def notice_summary(self, task_id: str, notice: ApprovalNeeded) -> NoticeSummary:
        """The request in words; raises `UnknownTask` or `TaskExpired` when it is gone."""
        ...

    async def record_notified(self, notice: ApprovalNeeded, recipient: str, channel: str) -> None:
        """The audit entry `notified`, once a message was delivered."""
        ...


class FanOut:
    def __init__(
        self,
        settings: NotificationSettings,
        *,
        issuer: str,
        public_url: str,
        service: NoticeService,
        outbox: OutboxStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._issuer = issuer
        self._public_url = public_url
        self._service = service
        self._outbox = outbox
        self._clock = clock

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            notice = ApprovalNeeded.from_payload(row.payload)
        except (ValueError, KeyError, TypeError):
            return GiveUp("unreadable approval_needed payload")
        named = candidates(self._settings.routing(notice.template), notice.reason)
        if named.nobody:
            log.debug("%s: nobody to tell for template %s", _about(notice), notice.template)
            return Delivered()
        try:
            summary = await self._service.notice_summary(notice.task_id, notice)
            if not is_current(notice, summary):
                log.info("%s: settled before anyone was told; nobody told", _about(notice))
                return Delivered()
            people = await self._people(notice, named)
        except (UnknownTask, TaskExpired):
            log.info("%s: the access request is gone; nobody told", _about(notice))
            return Delivered()
        except PDPError as exc:
            log.warning("%s: policy could not say who may act: %s", _about(notice), exc)
            return Retry(f"no decision on approvers: {type(exc).__name__}")
        words = NoticeWords.of(notice, summary, self._public_url)
        queued = repeated = 0
        now = self._clock()
        for delivery in deliveries(self._settings, people, named.webhooks):
            message = ApproverMessage(notice, delivery, words)
            added = await self._outbox.enqueue(
                APPROVER_MESSAGE, message.payload(), now, dedupe_key=message.dedupe_key
            )
            queued, repeated = queued + added, repeated + (not added)
        log.info(
            "%s: %d message(s) queued%s",
            _about(notice),
            queued,
            f", {repeated} queued before" if repeated else "",
        )
        return Delivered()

    async def _people(self, notice: ApprovalNeeded, named: Candidates) -> list[str]:
        """The named people who are told: as named for escalations, else those policy lets
        act on the notice now."""
        if not named.ask_policy or not named.people:
            return list(named.people)
        asked = [
            Approver(self._issuer, self._settings.people[name].type, name) for name in named.people
        ]
        allowed = set(await self._service.approvers_to_tell(notice, asked))
        told = [approver.sub for approver in asked if approver in allowed]
        left_out = len(named.people) - len(told)
        if left_out:
            log.debug("%s: %d named people may not act on it", _about(notice), left_out)
        return told


def _about(notice: ApprovalNeeded) -> str:
    return f"approval notice {notice.reason} for {notice.task_id} (step {notice.step + 1})"
