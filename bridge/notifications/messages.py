"""A notice in words: the subject line, the plain text of an e-mail, the text of a Slack
message, and the structured notice a signed webhook carries. All built from `NoticeWords`,
the request as the access request service describes it (`NoticeSummary`) plus the link to
its page, cleaned once: every value one line of printable text, of bounded length, so that
nothing a requester wrote can add a header, a line of its own or a link.
"""

from __future__ import annotations

import base64
import hashlib
import time
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from ..access_requests.notices import EMERGENCY_REVIEW, ESCALATION, ApprovalNeeded, NoticeSummary

MAX_LINES = 10  # of what is asked; more are counted, not listed
_LIMITS = {"line": 300, "name": 200, "why": 500, "justification": 1000}
_INTRO = {
    ESCALATION: "An access request has waited longer than its step allows and still needs a "
    "decision.",
    EMERGENCY_REVIEW: "Emergency access was granted at once by policy and waits for a review.",
}
_DECIDE_INTRO = "An access request waits for a decision."
_HEADLINE = {ESCALATION: "Still waiting for approval", EMERGENCY_REVIEW: "Review emergency access"}
_DECIDE_HEADLINE = "Approval needed"
_ACTION = {EMERGENCY_REVIEW: "Review it"}
_DECIDE_ACTION = "Decide it"


def one_line(text: str | None, limit: int) -> str:
    """`text` as one line of printable characters, at most `limit` long ('' for None)."""
    if not text:
        return ""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class NoticeWords:
    """What a message says, cleaned; what an `approver_message` row carries (no secret)."""

    task_id: str
    reason: str
    template: str
    step: int  # 1-based
    steps: int
    step_name: str
    subject: str  # whose access: "user alice"
    client: str  # through which client ('' when none)
    what: tuple[str, ...]  # one line per item asked for
    more: int  # items asked for beyond those listed
    why: str  # the template's description ('' when none)
    emergency: bool
    justification: str
    expires_at: int
    page_url: str

    @classmethod
    def of(cls, notice: ApprovalNeeded, summary: NoticeSummary, public_url: str) -> NoticeWords:
        lines = [one_line(w, _LIMITS["line"]) for w in summary.what]
        return cls(
            task_id=summary.task_id,
            reason=notice.reason,
            template=one_line(summary.template, _LIMITS["name"]),
            step=summary.step_number,
            steps=summary.total_steps,
            step_name=one_line(summary.step_name, _LIMITS["name"]),
            subject=one_line(summary.subject, _LIMITS["name"]),
            client=one_line(summary.client, _LIMITS["name"]),
            what=tuple(lines[:MAX_LINES]),
            more=max(0, len(lines) - MAX_LINES),
            why=one_line(summary.template_description, _LIMITS["why"]),
            emergency=summary.emergency,
            justification=one_line(summary.justification, _LIMITS["justification"]),
            expires_at=int(summary.expires_at),
            page_url=public_url.rstrip("/") + summary.page_path,
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "what": list(self.what)}

    @classmethod
    def from_json(cls, data: Any) -> NoticeWords:
        """Raises ValueError, KeyError or TypeError on what `to_json` did not write."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return cls(**{**data, "what": tuple(str(w) for w in data["what"])})


def title(words: NoticeWords) -> str:
    """The subject line: what it is about, in a glance."""
    headline = _HEADLINE.get(words.reason, _DECIDE_HEADLINE)
    if words.emergency and words.reason != EMERGENCY_REVIEW:
        headline = "[Emergency] " + headline
    first = words.what[0] if words.what else "access"
    others = len(words.what) - 1 + words.more
    asked = first + (f" (and {others} more)" if others else "")
    step = f" (step {words.step} of {words.steps})" if words.steps > 1 else ""
    return one_line(f"{headline}: {asked} for {words.subject}{step}", 250)


def expires(words: NoticeWords) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(words.expires_at))


def facts(words: NoticeWords) -> list[tuple[str, str]]:
    """(label, value) lines every message shows."""
    out = [("For", words.subject)]
    if words.client:
        out.append(("Through", words.client))
    if words.why:
        out.append(("Why", words.why))
    out.append(("Step", f"{words.step} of {words.steps} ({words.step_name})"))
    if words.emergency:
        out.append(("Emergency", "yes: approved at once by policy, for a short while"))
    if words.justification:
        out.append(("Justification", words.justification))
    out.append(("Open until", expires(words)))
    return out


def asked_lines(words: NoticeWords) -> list[str]:
    lines = list(words.what)
    if words.more:
        lines.append(f"and {words.more} more")
    return lines


def plain_text(words: NoticeWords) -> str:
    """The e-mail's body."""
    out = [_INTRO.get(words.reason, _DECIDE_INTRO), "", "Asked for:"]
    out += [f"  - {line}" for line in asked_lines(words)]
    out.append("")
    out += [f"{label}: {value}" for label, value in facts(words)]
    action = _ACTION.get(words.reason, _DECIDE_ACTION)
    out += ["", f"{action} on the request's page:", words.page_url, ""]
    out += [
        "-- ",
        f'Sent by the access request service for approval template "{words.template}".',
        "",
    ]
    return "\n".join(out)


def slack_escape(text: str) -> str:
    """Slack's three control characters (its `mrkdwn` text), so nobody's words form a link
    or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(words: NoticeWords) -> str:
    """A Slack incoming-webhook `text`: the title in bold, what is asked, the facts, and the
    link in Slack's `<url|label>` form."""
    out = [f"*{slack_escape(title(words))}*"]
    out += [f"• {slack_escape(line)}" for line in asked_lines(words)]
    out += [f"{label}: {slack_escape(value)}" for label, value in facts(words)]
    action = _ACTION.get(words.reason, _DECIDE_ACTION)
    out.append(f"<{words.page_url}|{action} on the request's page>")
    return "\n".join(out)


def notice_claim(words: NoticeWords, recipient: str) -> dict[str, Any]:
    """The `notice` claim of a signed webhook message: the same facts, structured."""
    return {
        "task_id": words.task_id,
        "reason": words.reason,
        "template": words.template,
        "step": words.step,
        "steps": words.steps,
        "step_name": words.step_name,
        "page_url": words.page_url,
        "recipient": recipient,
        "title": title(words),
        "subject": words.subject,
        "client": words.client or None,
        "what": list(words.what),
        "more": words.more,
        "why": words.why or None,
        "emergency": words.emergency,
        "justification": words.justification or None,
        "expires_at": words.expires_at,
    }


def message_id(dedupe_key: str) -> str:
    """A message's id, derived from its outbox dedupe key: the same on every replica and
    every retry, so a receiver can drop a message it already has."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")
