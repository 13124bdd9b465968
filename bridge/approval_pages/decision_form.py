"""The decision form of a request's page, read into what the service takes.

    decision        approve | deny (the button pressed)
    item-<n>        on, for each item decided (none ticked: every pending item, which the
                    approver must then be allowed to decide, all of them)
    approve_for     seconds, one of DURATIONS (absent: as requested, or the default)
    justification   optional, at most MAX_JUSTIFICATION characters

Item checkboxes have a name each because a form field may not repeat (`oauth.form`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..oauth.form import Form

MAX_JUSTIFICATION = 1000
_ITEM = re.compile(r"^item-(\d{1,3})$")


@dataclass(frozen=True)
class Decision:
    decision: str
    items: list[int] | None
    justification: str | None
    approved_until: float | None
    problem: str | None = None


def _refused(problem: str) -> Decision:
    return Decision("", None, None, None, problem)


class DecisionForm:
    # (seconds, words): the shorter lengths an approver may grant instead of the default.
    DURATIONS = (
        (900, "15 minutes"),
        (3600, "1 hour"),
        (4 * 3600, "4 hours"),
        (8 * 3600, "8 hours"),
        (86_400, "1 day"),
    )


def read_decision(form: Form, now: float) -> Decision:
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return _refused("Choose Approve or Deny.")
    justification = (form.get("justification") or "").strip() or None
    if justification is not None and len(justification) > MAX_JUSTIFICATION:
        return _refused(f"A justification has at most {MAX_JUSTIFICATION} characters.")
    ticked = [name for name in form.as_dict() if name.startswith("item-")]
    if not all(_ITEM.fullmatch(name) for name in ticked):
        return _refused("The form names an item that is not on the request.")
    items = sorted(int(name.removeprefix("item-")) for name in ticked)
    until = None
    chosen = form.get("approve_for")
    if chosen is not None:
        allowed = {str(seconds): seconds for seconds, _ in DecisionForm.DURATIONS}
        if chosen not in allowed:
            return _refused("Choose one of the offered lengths.")
        if decision == "approve":
            until = now + allowed[chosen]
    return Decision(str(decision), items or None, justification, until)
