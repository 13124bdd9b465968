"""The `approver_message` outbox row: one message to one recipient through one channel.

Its payload holds what the message says (`NoticeWords`), whom it goes to and how, and the
notice it answers; never a secret: a webhook is named, its URL (a Slack URL is a
credential) is read from the configuration when the message is sent, and the SMTP password
from its file.

    {"v": 1, "notice": {"task_id", "reason", "template", "step", "item"},
     "recipient": "person:alice", "channel": "email", "address": "alice@example.com",
     "words": {...}}

`dedupe_key` names the notice (task, reason, step, item), the recipient and the channel:
the store queues at most one row per key, so a fan-out delivered twice, or run by two
replicas at once, queues each message once. `message_id` is derived from it: the same on
every attempt (a webhook's `jti`, an e-mail's `Message-ID`), so a receiver can drop a
repeat the bridge sent because it never heard the first one was received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..access_requests.notices import ApprovalNeeded
from .messages import NoticeWords, message_id, notice_claim, slack_text
from .routing import Delivery

APPROVER_MESSAGE = "approver_message"
VERSION = 1


@dataclass(frozen=True, slots=True)
class ApproverMessage:
    notice: ApprovalNeeded
    delivery: Delivery
    words: NoticeWords

    @property
    def dedupe_key(self) -> str:
        notice = self.notice
        return json.dumps(
            [
                APPROVER_MESSAGE,
                notice.task_id,
                notice.reason,
                notice.step,
                notice.item,
                self.delivery.recipient,
                self.delivery.channel,
            ],
            separators=(",", ":"),
        )

    @property
    def message_id(self) -> str:
        return message_id(self.dedupe_key)

    # As a webhook carries it (`webhook.WebhookMessage`).
    typ = "approval-notice+jwt"

    def claims(self) -> dict[str, Any]:
        return {"notice": notice_claim(self.words, self.delivery.recipient)}

    def slack_text(self) -> str:
        return slack_text(self.words)

    def payload(self) -> bytes:
        return json.dumps(
            {
                "v": VERSION,
                "notice": json.loads(self.notice.payload()),
                "recipient": self.delivery.recipient,
                "channel": self.delivery.channel,
                "address": self.delivery.address,
                "words": self.words.to_json(),
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> ApproverMessage:
        """Raises ValueError on a payload this code did not write."""
        try:
            data = json.loads(payload)
            if data["v"] != VERSION:
                raise ValueError(f"version {data['v']!r}")
            notice = ApprovalNeeded.from_payload(json.dumps(data["notice"]).encode("utf-8"))
            delivery = Delivery(str(data["recipient"]), str(data["channel"]), data["address"])
            return cls(notice, delivery, NoticeWords.from_json(data["words"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an approver_message payload: {exc}") from None
