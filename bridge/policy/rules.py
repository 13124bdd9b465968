"""The authoring rules `validate` checks on top of what the engine refuses.

The engine loads a policy without `@id` (naming it `<file>#<n>`) and ignores annotations it
does not know. These rules make a store easy to operate and make `@approval` mean what the
author thinks: every policy has an `@id`; `@approval` names a template and sits only on
`forbid` policies (a permit cannot make a denial requestable); and some approver policy can
approve each template (see `approval.py` for the heuristic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cedarpy
from cedarpy import pst

from ..authzen.cedar.source import Statement
from ..authzen.cedar.store import StoreProblem
from ..grammar import is_template_name
from .approval import APPROVAL, APPROVE_ACTION, admits_approve, approvable_by
from .locate import PolicyFile, Position

_NO_TEMPLATE = '@approval needs a template name, e.g. @approval("manager")'
_BAD_TEMPLATE = (
    "@approval template {template!r} is not a name: letters, digits and _ - . : only, "
    "starting with a letter or digit"
)


@dataclass(frozen=True)
class ParsedPolicy:
    """One static policy of a file that parses, with its statement when it is known."""

    file: PolicyFile
    number: int  # its place in the file, from 0
    template: pst.Template
    statement: Statement | None

    def at(self, annotation: str | None = None) -> Position:
        if self.statement is None:
            return 1, 1
        if annotation is None:
            return self.statement.line, self.statement.column
        return self.file.annotation(self.statement, annotation)

    def problem(self, message: str, annotation: str | None = None) -> StoreProblem:
        line, column = self.at(annotation)
        if self.statement is None:
            message += f" (policy #{self.number} of the file)"
        return StoreProblem(self.file.rel, line, message, column)


def parse_file(file: PolicyFile) -> list[ParsedPolicy] | None:
    """The file's static policies, or None when it does not parse (the engine says why)."""
    try:
        parsed = cedarpy.PolicySet.from_str(file.text).to_pst()
    except ValueError:
        return None
    templates = list(parsed.static_policies.values())
    aligned = len(file.statements) == len(templates)
    return [
        ParsedPolicy(file, n, template, file.statements[n] if aligned else None)
        for n, template in enumerate(templates)
    ]


def authoring_problems(
    policies: Sequence[ParsedPolicy], groups_of_approve: frozenset[str]
) -> list[StoreProblem]:
    problems: list[StoreProblem] = []
    requested: list[tuple[ParsedPolicy, str]] = []
    for policy in policies:
        annotations = policy.template.annotations
        if not annotations.get("id"):
            problems.append(policy.problem("policy has no @id annotation"))
        if APPROVAL not in annotations:
            continue
        template = annotations[APPROVAL]
        if str(policy.template.effect) != "forbid":
            problems.append(
                policy.problem("@approval is only allowed on forbid policies", APPROVAL)
            )
        elif not template:
            problems.append(policy.problem(_NO_TEMPLATE, APPROVAL))
        elif not is_template_name(template):
            problems.append(policy.problem(_BAD_TEMPLATE.format(template=template), APPROVAL))
        else:
            requested.append((policy, template))
    approvers = [
        p.template
        for p in policies
        if str(p.template.effect) == "permit"
        and admits_approve(p.template.action, groups_of_approve)
    ]
    approvable = approvable_by(approvers)
    for policy, template in requested:
        if not approvable(template):
            problems.append(
                policy.problem(
                    f'no approver for template "{template}": no permit policy for '
                    f'Action::"{APPROVE_ACTION}" mentions "{template}"',
                    APPROVAL,
                )
            )
    return problems
