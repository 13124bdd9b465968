"""What the access request service asks to be told to approvers: an `approval_needed` outbox
row, queued in the transaction of the change that makes approvers needed.

- `decide`: a request (or its next step) waits for a decision;
- `escalation`: a step waited longer than its template's timeout;
- `emergency_review`: an emergency request was approved at once by policy and waits for a
  review.

The notifications part reads these rows, asks the service which of the configured people
policy allows (`AccessRequestService.approvers_to_tell`), and sends them the message through
their channels. The row names the step it was queued for, so a notice that arrives after
that step was decided tells nobody.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

APPROVAL_NEEDED = "approval_needed"

DECIDE = "decide"
ESCALATION = "escalation"
EMERGENCY_REVIEW = "emergency_review"
REASONS = frozenset({DECIDE, ESCALATION, EMERGENCY_REVIEW})


@dataclass(frozen=True, slots=True)
class ApprovalNeeded:
    task_id: str
    reason: str  # DECIDE, ESCALATION or EMERGENCY_REVIEW
    template: str
    step: int  # 0-based index of the template's step the notice is about
    item: int  # the task's item whose step it is

    def payload(self) -> bytes:
        return json.dumps(
            {
                "task_id": self.task_id,
                "reason": self.reason,
                "template": self.template,
                "step": self.step,
                "item": self.item,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    def outbox_row(self) -> tuple[str, bytes]:
        return APPROVAL_NEEDED, self.payload()

    @classmethod
    def from_payload(cls, payload: bytes) -> ApprovalNeeded:
        """Raises ValueError on a payload this code did not write."""
        data = json.loads(payload)
        if not isinstance(data, dict) or data.get("reason") not in REASONS:
            raise ValueError("not an approval_needed payload")
        return cls(
            task_id=str(data["task_id"]),
            reason=str(data["reason"]),
            template=str(data["template"]),
            step=int(data["step"]),
            item=int(data["item"]),
        )


@dataclass(frozen=True, slots=True)
class NoticeSummary:
    """A request in the words a message to approvers uses (no secret, no token, no binding
    material): whose access, through which client, what, why, until when, and the path of
    its page on the bridge (`/approvals/<task id>`)."""

    task_id: str
    status: str
    subject: str  # e.g. "user alice"
    client: str | None  # the client it came through, when one did
    what: tuple[str, ...]  # one line per item, the profiles' words where known
    template: str
    template_description: str | None
    step_name: str
    step_number: int  # 1-based
    total_steps: int
    emergency: bool
    justification: str | None
    expires_at: float
    page_path: str
    # Whether what the notice is about still waits: its item at the notice's step, or its
    # emergency approval not yet reviewed. A notice read after that tells nobody.
    current: bool = True
