"""The steps of an item's approval, as the item carries them (pure functions, no I/O).

At filing each item gets a copy of its template's steps, so a template edited later changes
no request already waiting:

    item["steps"] = [{"name", "approvals", "timeout_seconds", "given": [...],
                      "escalated": bool}, ...]
    item["step"] = index of the step waiting now; item["step_started_at"] = when it began

`given` lists who approved that step (`{"by", "at", "approved_until"?, "justification"?}`).
A step is done when `approvals` different people have approved it; the item is approved when
its last step is done. One person approves at most one step of an item, and never the same
step twice, so a two-step template always takes two people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .templates import Step, Template

Item = dict[str, Any]


def initial_steps(template: Template, now: float) -> dict[str, Any]:
    """The members an item gets at filing for `template`."""
    return {
        "steps": [{**step.to_json(), "given": [], "escalated": False} for step in template.steps],
        "step": 0,
        "step_started_at": now,
    }


@dataclass(frozen=True, slots=True)
class StepState:
    index: int  # 0-based
    total: int
    name: str
    approvals: int  # needed
    given: int  # so far
    timeout_seconds: int | None
    started_at: float
    escalated: bool

    @property
    def number(self) -> int:
        return self.index + 1


def current_step(item: Item) -> StepState:
    """The step an item waits on (for an item filed before steps existed: one step)."""
    steps = item.get("steps") or [{"name": "approve", "approvals": 1}]
    index = min(int(item.get("step", 0)), len(steps) - 1)
    step = steps[index]
    return StepState(
        index=index,
        total=len(steps),
        name=str(step["name"]),
        approvals=int(step.get("approvals", 1)),
        given=len(step.get("given") or []),
        timeout_seconds=step.get("timeout_seconds"),
        started_at=float(item.get("step_started_at", 0.0)),
        escalated=bool(step.get("escalated")),
    )


def approvers_of(item: Item) -> set[str]:
    """The keys of everyone who approved some step of the item."""
    return {
        str(given["by"])
        for step in item.get("steps") or []
        for given in step.get("given") or []
        if isinstance(given, dict) and "by" in given
    }


def has_approved(item: Item, subject_type: str, sub: str) -> bool:
    """Whether the person named `sub` approved some step of the item, whatever issuer
    named them then (an approver token, or a sign-in on the pages): one person, one step.
    Compared as names, like the rule that nobody decides their own request: a coincidence
    refuses someone who may be another person, never the other way round."""
    for key in approvers_of(item):
        try:
            _issuer, kind, name = json.loads(key)
        except (ValueError, TypeError):
            continue
        if (kind, name) == (subject_type, sub):
            return True
    return False


@dataclass(frozen=True, slots=True)
class StepApproval:
    """What one approval did to an item: finished it, moved it on, or only counted."""

    item: Item
    finished: bool  # the last step is done: the item is approved
    advanced: bool  # a later step now waits


def approve_step(
    item: Item,
    by: str,
    now: float,
    approved_until: float | None,
    justification: str | None,
) -> StepApproval:
    """Count `by`'s approval on the item's current step. The caller has checked that `by`
    may approve this step and has approved no step of this item before."""
    steps = [dict(step) for step in item.get("steps") or [{"name": "approve", "approvals": 1}]]
    index = min(int(item.get("step", 0)), len(steps) - 1)
    given: dict[str, Any] = {"by": by, "at": now}
    if approved_until is not None:
        given["approved_until"] = approved_until
    if justification is not None:
        given["justification"] = justification
    step = steps[index]
    step["given"] = [*(step.get("given") or []), given]
    out = {**item, "steps": steps}
    if len(step["given"]) < int(step.get("approvals", 1)):
        return StepApproval(out, finished=False, advanced=False)
    if index + 1 < len(steps):
        out.update(step=index + 1, step_started_at=now)
        return StepApproval(out, finished=False, advanced=True)
    return StepApproval(out, finished=True, advanced=False)


def chosen_until(item: Item) -> float | None:
    """The earliest `approved_until` any approver of the item set (None: nobody set one):
    every approver can only shorten what the others granted."""
    untils = [
        float(given["approved_until"])
        for step in item.get("steps") or []
        for given in step.get("given") or []
        if isinstance(given, dict) and given.get("approved_until") is not None
    ]
    return min(untils) if untils else None


def mark_escalated(item: Item) -> Item:
    steps = [dict(step) for step in item.get("steps") or []]
    index = min(int(item.get("step", 0)), len(steps) - 1)
    steps[index]["escalated"] = True
    return {**item, "steps": steps}


def due_for_escalation(item: Item, now: float) -> bool:
    state = current_step(item)
    return (
        state.timeout_seconds is not None
        and not state.escalated
        and state.started_at + state.timeout_seconds <= now
    )


def step_of(template: Template, index: int) -> Step:
    return template.steps[min(index, len(template.steps) - 1)]
