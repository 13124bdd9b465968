"""Requestable denials and approvers, read from the policies themselves.

A `forbid` policy may carry `@approval("<template>")`. A Deny is requestable when Cedar names
at least one determining policy and every one of them is such a `forbid` with the same
template: then approving that template (which arrives as `context.approval`) is what stands
between the request and a permit. A default deny (nothing permitted) is never requestable:
no approval could change it.

The engine decides that (`PolicyStore.approval_template`, surfaced as `Decision.requestable`)
and the policy tools take its answer as it is, so `explain` and `test` can never disagree
with the server. What this module adds is the reason a denial is not requestable.

Who may approve is itself a Cedar decision: `Action::"approve"` on the access request. The
bridge cannot evaluate that for every possible approver, so `validate` uses a heuristic to
catch templates nobody can approve: some `permit` policy must admit `Action::"approve"` in
its scope (directly, through an action group, or with an unconstrained action) and either
have no condition, or mention the template as a string literal in one (for example
`resource.template == "manager"`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cedarpy import pst

from ..authzen.cedar.names import ACTION_TYPE
from ..authzen.cedar.store import APPROVAL_ANNOTATION, PolicyStore
from ..authzen.models import Decision

APPROVAL = APPROVAL_ANNOTATION
APPROVE_ACTION = "approve"


@dataclass(frozen=True, slots=True)
class Requestability:
    """Whether a decision is a requestable denial: its template, or why it is not."""

    template: str | None
    reason: str

    def to_json(self) -> str | bool:
        return self.template if self.template is not None else False


def requestability(store: PolicyStore, decision: Decision) -> Requestability:
    """The engine's finding for `decision` (one made with explanations), with its reason.

    The template is `decision.requestable` and nothing else; the determining policies in
    `decision.context` only serve to say why a denial is not requestable."""
    if decision.decision:
        return Requestability(None, "the request is permitted")
    if decision.requestable is not None:
        return Requestability(
            decision.requestable, f'requestable with template "{decision.requestable}"'
        )
    determining = (decision.context or {}).get("determining_policies")
    if not isinstance(determining, list):
        return Requestability(None, "no approval template (decided without explanations)")
    return Requestability(None, _why_not(store, determining))


def _why_not(store: PolicyStore, determining: Sequence[str]) -> str:
    """Why the engine found no approval template for a denial by these policies."""
    if not determining:
        return "no forbid policy decided: nothing permits the request"
    templates: set[str] = set()
    for policy_id in determining:
        record = store.policy(policy_id)
        template = record.annotations.get(APPROVAL) if record is not None else None
        if record is None or record.effect != "forbid" or not template:
            return f"policy {policy_id!r} has no @approval"
        templates.add(template)
    if len(templates) > 1:
        listed = ", ".join(f'"{t}"' for t in sorted(templates))
        return f"the deciding policies ask for different templates: {listed}"
    return "the engine found no approval template"  # not while both read the same annotations


def admits_approve(action: pst.ActionConstraint, groups_of_approve: frozenset[str]) -> bool:
    """Whether a scope's action constraint can match `Action::"approve"`."""
    match action:
        case pst.ActionEq(entity=uid):
            return str(uid.type) == ACTION_TYPE and uid.id == APPROVE_ACTION
        case pst.ActionIn(entities=uids):
            wanted = groups_of_approve | {APPROVE_ACTION}
            return any(str(u.type) == ACTION_TYPE and u.id in wanted for u in uids)
        case _:
            return True  # an unconstrained action


def string_literals(node: object) -> Iterable[str]:
    """Every string literal in a policy's conditions (any depth)."""
    if isinstance(node, pst.StringLit):
        yield node.value
    elif isinstance(node, tuple | list):
        for item in node:
            yield from string_literals(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            yield from string_literals(getattr(node, field.name))


def approvable_by(
    approvers: Sequence[pst.Template],
) -> Callable[[str], bool]:
    """A test for templates, given the `permit` policies that admit `Action::"approve"`."""
    unconditional = any(not policy.clauses for policy in approvers)
    mentioned = {text for policy in approvers for text in string_literals(policy.clauses)}
    return lambda template: unconditional or template in mentioned
