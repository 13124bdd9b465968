"""A received event, verified and taken once, as the actions that carry it out see it: who
sent it (and who that is to the policies and the audit trail), what it says, about whom.

A transmitter is an approver to the policies: the subject `{"type": "transmitter", "id":
<its name>}` (`TRANSMITTER_TYPE`), its key in the audit trail the approvers' form
`["<its issuer>","transmitter","<its name>"]`. `source` is what every audit entry of a change
an event made carries: the transmitter, the SET's issuer, `jti`, event type and `txn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..access_requests.approvers import Approver
from .security_event_token import SecurityEvent
from .subject_identifiers import NamedSubject, person_of
from .transmitters import Transmitter

TRANSMITTER_TYPE = "transmitter"


@dataclass(frozen=True)
class Incoming:
    transmitter: Transmitter
    event: SecurityEvent
    # False when an event of the same `txn` was received before: the bridge acts on it, and
    # does not pass it on again (two bridges streaming to each other stop there).
    first_of_txn: bool = True

    @property
    def approver(self) -> Approver:
        return Approver(self.transmitter.settings.issuer, TRANSMITTER_TYPE, self.transmitter.name)

    @property
    def txn(self) -> str:
        """The event's `txn`, or (without one) its issuer and `jti`: what relays carry on."""
        return self.event.txn or f"{self.event.issuer}#{self.event.jti}"

    @property
    def source(self) -> dict[str, Any]:
        return {
            "transmitter": self.transmitter.name,
            "iss": self.event.issuer,
            "jti": self.event.jti,
            "event": self.event.event_type,
            "txn": self.txn,
        }

    def person(self) -> NamedSubject | None:
        """The person the event's subject names, if the bridge can tell."""
        settings = self.transmitter.settings
        return person_of(
            self.event.sub_id, subject_type=settings.subject_type, issuer=settings.issuer
        )

    def reason(self) -> str | None:
        """CAEP's `reason_admin` (English, else any language), for the audit trail."""
        reasons = self.event.event.get("reason_admin")
        if not isinstance(reasons, dict) or not reasons:
            return None
        text = reasons.get("en", next(iter(reasons.values())))
        return text[:2000] if isinstance(text, str) else None
