"""Who may decide an access request: a Cedar decision of the store whose policy denied.

For each approval template among the items in question the bridge asks the store's PDP:

- subject: the approver, `{"type": <approver issuer's subject_type>, "id": <sub>}`;
- action: `approve`;
- resource: `{"type": "AccessRequest", "id": <task id>, "properties": {...}}` with
  `template` (the `@approval` template), `requester` (`pep:<id>` or `client:<client id>`),
  `subject_type` and `subject_id` (whose access is requested) and `items`, the pairs of that
  template as `{"resource_type", "resource_id", "action"}` records;
- context: `{"approver_id": <sub>}`.

Self-approval and separation of duties are policy, e.g.
`forbid (principal, action == Action::"approve", resource is AccessRequest)
when { resource.subject_id == context.approver_id };`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..authzen.models import EvaluationRequest, EvaluationsSemantic
from ..authzen.pdp import PDP
from ..store.contract import TaskRecord
from .tasks import PENDING

log = logging.getLogger("bridge.access_requests")

APPROVE_ACTION = "approve"
ACCESS_REQUEST_TYPE = "AccessRequest"


@dataclass(frozen=True, slots=True)
class Approver:
    """An authenticated approver: the issuer of their token, their subject type and `sub`."""

    issuer: str
    subject_type: str
    sub: str


def approve_request(approver: Approver, task: TaskRecord, template: str) -> EvaluationRequest:
    items = [
        {
            "resource_type": item["resource"]["type"],
            "resource_id": item["resource"]["id"],
            "action": item["action"]["name"],
        }
        for item in task.items
        if item["template"] == template
    ]
    return EvaluationRequest.model_validate(
        {
            "subject": {"type": approver.subject_type, "id": approver.sub},
            "action": {"name": APPROVE_ACTION},
            "resource": {
                "type": ACCESS_REQUEST_TYPE,
                "id": task.id,
                "properties": {
                    "template": template,
                    "requester": task.requester,
                    "subject_type": task.subject["type"],
                    "subject_id": task.subject["id"],
                    "items": items,
                },
            },
            "context": {"approver_id": approver.sub},
        }
    )


def pending_templates(task: TaskRecord) -> list[str]:
    return list(dict.fromkeys(i["template"] for i in task.items if i["status"] == PENDING))


class ApproverPolicy:
    """Asks each store's PDP (keyed by its PDP identifier) who may approve what."""

    def __init__(self, deciders: Mapping[str, PDP]) -> None:
        self._deciders = deciders

    async def allowed(
        self, approver: Approver, tasks: Iterable[tuple[TaskRecord, str]]
    ) -> list[bool]:
        """One answer per (task, template): may `approver` decide its items? One batch per
        store; a failed item or a store that is not configured answers no."""
        asked = list(tasks)
        answers = [False] * len(asked)
        by_pdp: dict[str, list[int]] = {}
        for n, (task, _) in enumerate(asked):
            by_pdp.setdefault(task.pdp, []).append(n)
        for pdp_id, members in by_pdp.items():
            pdp = self._deciders.get(pdp_id)
            if pdp is None:
                log.warning("no policy store %s to decide approvers", pdp_id)
                continue
            requests = [approve_request(approver, *asked[n]) for n in members]
            decisions = await pdp.evaluations(requests, EvaluationsSemantic.execute_all)
            for n, decision in zip(members, decisions, strict=False):
                answers[n] = decision.decision
        return answers
