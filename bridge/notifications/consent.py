"""Telling a user that a client asks to act for her (a CIBA request, `bridge.ciba`), so she
can approve or decline on her own device: the notice and its message, in words.

The CIBA part queues a `consent_notice` outbox row in the transaction that stores the
request; its payload is the notice, words included, and no secret (never the `auth_req_id`):

    {"v": 1, "request_id", "person", "subject_type",
     "words": {"client", "what", "binding_message", "expires_at", "page_url"}}

`consent_delivery` reads it, finds the person among `[notifications.people]` (the same name
and subject type), and queues one `consent_message` row per channel of hers (e-mail, her
webhook), each under a dedupe key, as approvers' notices are fanned out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from .messages import message_id, one_line, slack_escape
from .routing import Delivery

CONSENT_NOTICE = "consent_notice"
CONSENT_MESSAGE = "consent_message"
VERSION = 1
MAX_LINES = 10
_LINE = 300


@dataclass(frozen=True, slots=True)
class ConsentWords:
    """What a consent message says, each value one clean line (nothing a client sent can
    add a header, a line or a link)."""

    client: str
    what: tuple[str, ...]
    binding_message: str
    expires_at: int
    page_url: str

    @classmethod
    def of(
        cls,
        client: str,
        what: list[str],
        binding_message: str | None,
        expires_at: float,
        page_url: str,
    ) -> ConsentWords:
        return cls(
            client=one_line(client, 200),
            what=tuple(one_line(line, _LINE) for line in what[:MAX_LINES]),
            binding_message=one_line(binding_message, _LINE),
            expires_at=int(expires_at),
            page_url=page_url,
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "what": list(self.what)}

    @classmethod
    def from_json(cls, data: Any) -> ConsentWords:
        """Raises ValueError, KeyError or TypeError on what `to_json` did not write."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return cls(**{**data, "what": tuple(str(w) for w in data["what"])})


@dataclass(frozen=True, slots=True)
class ConsentNotice:
    request_id: str  # the CIBA request, whose page the words link to
    person: str  # her name: the `sub` policies see, a key of [notifications.people]
    subject_type: str
    words: ConsentWords

    def payload(self) -> bytes:
        return json.dumps(
            {
                "v": VERSION,
                "request_id": self.request_id,
                "person": self.person,
                "subject_type": self.subject_type,
                "words": self.words.to_json(),
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> ConsentNotice:
        """Raises ValueError on a payload this code did not write."""
        try:
            data = json.loads(payload)
            if data["v"] != VERSION:
                raise ValueError(f"version {data['v']!r}")
            return cls(
                str(data["request_id"]),
                str(data["person"]),
                str(data["subject_type"]),
                ConsentWords.from_json(data["words"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a consent_notice payload: {exc}") from None


@dataclass(frozen=True, slots=True)
class ConsentMessage:
    """One consent notice to her through one channel: a `consent_message` row."""

    notice: ConsentNotice
    delivery: Delivery

    # As a webhook carries it (`webhook.WebhookMessage`).
    typ = "consent-notice+jwt"

    @property
    def dedupe_key(self) -> str:
        notice, delivery = self.notice, self.delivery
        return json.dumps(
            [CONSENT_MESSAGE, notice.request_id, delivery.recipient, delivery.channel],
            separators=(",", ":"),
        )

    @property
    def message_id(self) -> str:
        return message_id(self.dedupe_key)

    def claims(self) -> dict[str, Any]:
        words = self.notice.words
        return {
            "consent_notice": {
                "request_id": self.notice.request_id,
                "recipient": self.delivery.recipient,
                "title": title(words),
                "client": words.client,
                "what": list(words.what),
                "binding_message": words.binding_message or None,
                "expires_at": words.expires_at,
                "page_url": words.page_url,
            }
        }

    def slack_text(self) -> str:
        lines = [f"*{slack_escape(title(self.notice.words))}*"]
        lines += [f"• {slack_escape(line)}" for line in self.notice.words.what]
        lines += [f"{label}: {slack_escape(value)}" for label, value in facts(self.notice.words)]
        lines.append(f"<{self.notice.words.page_url}|Approve or decline on your page>")
        return "\n".join(lines)

    def payload(self) -> bytes:
        return json.dumps(
            {
                "notice": json.loads(self.notice.payload()),
                "recipient": self.delivery.recipient,
                "channel": self.delivery.channel,
                "address": self.delivery.address,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> ConsentMessage:
        """Raises ValueError on a payload this code did not write."""
        try:
            data = json.loads(payload)
            notice = ConsentNotice.from_payload(json.dumps(data["notice"]).encode("utf-8"))
            delivery = Delivery(str(data["recipient"]), str(data["channel"]), data["address"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a consent_message payload: {exc}") from None
        return cls(notice, delivery)


def title(words: ConsentWords) -> str:
    return one_line(f"{words.client} asks to act for you", 250)


def facts(words: ConsentWords) -> list[tuple[str, str]]:
    out = [("Through", words.client)]
    if words.binding_message:
        out.append(("The application shows", words.binding_message))
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(words.expires_at))
    out.append(("Open until", expires))
    return out


def plain_text(words: ConsentWords) -> str:
    """The e-mail's body."""
    out = [f"{words.client} asks to act for you. Nothing happens unless you approve.", ""]
    out.append("It asks to:")
    out += [f"  - {line}" for line in words.what]
    out.append("")
    out += [f"{label}: {value}" for label, value in facts(words)]
    out += ["", "Approve or decline on your page, after signing in:", words.page_url, ""]
    out += ["-- ", "Sent by AuthZEN Bridge for a backchannel (CIBA) request.", ""]
    return "\n".join(out)
