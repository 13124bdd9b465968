"""Who is told about a notice, through which channels: pure functions of the configuration,
the notice and what policy allowed (no I/O).

A recipient is a person (`person:<name>`, reached by their e-mail and their own webhook) or
a group channel (`webhook:<name>`, a template's `webhooks`). A channel is `email` or
`webhook:<name>`. One delivery is one message: a recipient through one channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..access_requests.notices import EMERGENCY_REVIEW, ESCALATION, ApprovalNeeded, NoticeSummary
from ..settings import NotificationSettings, NotificationTemplateSettings

EMAIL = "email"
PERSON_PREFIX = "person:"
WEBHOOK_PREFIX = "webhook:"
PENDING = "pending"
# Statuses in which an emergency approval still stands, so that reviewing it means something.
_EMERGENCY_STANDS = frozenset({"approved", "pending", "partial"})


@dataclass(frozen=True, slots=True)
class Delivery:
    recipient: str  # "person:<name>" or "webhook:<name>"
    channel: str  # "email" or "webhook:<name>"
    address: str | None = None  # the e-mail address, for EMAIL

    @property
    def webhook(self) -> str | None:
        """The webhook's name, for a webhook channel."""
        if self.channel.startswith(WEBHOOK_PREFIX):
            return self.channel.removeprefix(WEBHOOK_PREFIX)
        return None


@dataclass(frozen=True, slots=True)
class Candidates:
    """Whom the configuration names for a notice, before policy has its say."""

    people: tuple[str, ...]
    webhooks: tuple[str, ...]
    ask_policy: bool  # whether `people` are only those policy lets act on the notice

    @property
    def nobody(self) -> bool:
        return not self.people and not self.webhooks


def candidates(routing: NotificationTemplateSettings | None, reason: str) -> Candidates:
    """Escalations go to the template's escalation recipients as they are (they chase the
    step, they need not decide it); the other notices to the people policy allows among its
    `people`, and to its group webhooks."""
    if routing is None:
        return Candidates((), (), ask_policy=False)
    if reason == ESCALATION:
        return Candidates(
            _once(routing.escalation_people), _once(routing.escalation_webhooks), False
        )
    return Candidates(_once(routing.people), _once(routing.webhooks), ask_policy=True)


def is_current(notice: ApprovalNeeded, summary: NoticeSummary) -> bool:
    """Whether the request still waits for what the notice is about: the service says so
    (`summary.current`: the step has not moved on, the review was not given), and the
    request is pending, for `decide` and `escalation`; for `emergency_review`, an emergency
    not denied, cancelled or expired. A notice read after that tells nobody."""
    if not summary.current:
        return False
    if notice.reason == EMERGENCY_REVIEW:
        return summary.emergency and summary.status in _EMERGENCY_STANDS
    return summary.status == PENDING


def deliveries(
    settings: NotificationSettings, people: Iterable[str], webhooks: Iterable[str]
) -> list[Delivery]:
    """One delivery per person and channel of theirs (e-mail, their webhook), and one per
    group webhook; each once, in the configuration's order."""
    found: list[Delivery] = []
    for name in people:
        person = settings.people.get(name)
        if person is None:
            continue
        if person.email is not None and settings.smtp is not None:
            found.append(Delivery(PERSON_PREFIX + name, EMAIL, person.email))
        if person.webhook is not None:
            found.append(Delivery(PERSON_PREFIX + name, WEBHOOK_PREFIX + person.webhook))
    for name in webhooks:
        if name in settings.webhooks:
            found.append(Delivery(WEBHOOK_PREFIX + name, WEBHOOK_PREFIX + name))
    return list(dict.fromkeys(found))


def _once(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
