"""A `notification` obligation's message (the AuthZEN obligations profile): what a PDP asked
the bridge to tell someone when it decided a token request, through the channels of
`[notifications]`. One `obligation_notice` outbox row per recipient and channel:

    {"v": 1, "notice_id", "obligation_id", "recipient", "channel", "address",
     "words": {"topic", "body", "subject", "client", "what"}}

The words are the PDP's (`topic`, `body`) and the bridge's own facts about the decision
(whose token, through which client, for what), each cleaned to one line of bounded length:
the profile asks a PEP to treat `to` and `body` as untrusted input, so nothing a PDP sends
can add a header, a line or a link of its own. `notice_id` is new for each obligation
carried out; the message id derived from it is the same on every attempt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .messages import message_id, one_line, slack_escape
from .routing import Delivery

OBLIGATION_NOTICE = "obligation_notice"
VERSION = 1
DEFAULT_TOPIC = "A notice from the access policy"
_LIMITS = {"topic": 200, "body": 2000, "fact": 300}


@dataclass(frozen=True, slots=True)
class ObligationWords:
    """What the message says, cleaned."""

    topic: str
    body: str
    subject: str  # whose token: "user alice"
    client: str
    what: str  # the decision it rode on: "read on CustomerRecord c-1"

    @classmethod
    def of(
        cls, topic: str | None, body: str, subject: str, client: str, what: str
    ) -> ObligationWords:
        return cls(
            topic=one_line(topic, _LIMITS["topic"]) or DEFAULT_TOPIC,
            body=one_line(body, _LIMITS["body"]),
            subject=one_line(subject, _LIMITS["fact"]),
            client=one_line(client, _LIMITS["fact"]),
            what=one_line(what, _LIMITS["fact"]),
        )


@dataclass(frozen=True, slots=True)
class ObligationNotice:
    """One notice to one recipient through one channel: an `obligation_notice` row."""

    notice_id: str
    obligation_id: str
    delivery: Delivery
    words: ObligationWords

    # As a webhook carries it (`webhook.WebhookMessage`).
    typ = "obligation-notice+jwt"

    @property
    def dedupe_key(self) -> str:
        return json.dumps(
            [OBLIGATION_NOTICE, self.notice_id, self.delivery.recipient, self.delivery.channel],
            separators=(",", ":"),
        )

    @property
    def message_id(self) -> str:
        return message_id(self.dedupe_key)

    def claims(self) -> dict[str, Any]:
        return {
            "obligation_notice": {
                "obligation_id": self.obligation_id,
                "recipient": self.delivery.recipient,
                **asdict(self.words),
            }
        }

    def slack_text(self) -> str:
        words = self.words
        return "\n".join(
            [
                f"*{slack_escape(words.topic)}*",
                slack_escape(words.body),
                f"_{slack_escape(about(words))}_",
            ]
        )

    def plain_text(self) -> str:
        """The e-mail's body."""
        words = self.words
        return "\n".join(
            [
                words.body,
                "",
                about(words),
                "",
                "-- ",
                "Sent by AuthZEN Bridge: the policy decision point asked for this notice "
                "when it decided a token request.",
                "",
            ]
        )

    def payload(self) -> bytes:
        return json.dumps(
            {
                "v": VERSION,
                "notice_id": self.notice_id,
                "obligation_id": self.obligation_id,
                "recipient": self.delivery.recipient,
                "channel": self.delivery.channel,
                "address": self.delivery.address,
                "words": asdict(self.words),
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> ObligationNotice:
        """Raises ValueError on a payload this code did not write."""
        try:
            data = json.loads(payload)
            if data["v"] != VERSION:
                raise ValueError(f"version {data['v']!r}")
            return cls(
                str(data["notice_id"]),
                str(data["obligation_id"]),
                Delivery(str(data["recipient"]), str(data["channel"]), data["address"]),
                ObligationWords(**data["words"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an obligation_notice payload: {exc}") from None


def about(words: ObligationWords) -> str:
    through = f" through {words.client}" if words.client else ""
    return f"About a token for {words.subject}{through}: {words.what}."
