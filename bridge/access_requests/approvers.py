"""Who may decide an access request: a Cedar decision of the store whose policy denied.

For each approval template among the items in question the bridge asks the store's PDP:

- subject: the approver, `{"type": <approver issuer's subject_type>, "id": <sub>}`;
- action: `approve`;
- resource: `{"type": "AccessRequest", "id": <task id>, "properties": {...}}` with
  `template` (the `@approval` template), `requester` (`pep:<id>` or `client:<client id>`),
  `subject_type` and `subject_id` (whose access is requested) and `items`, the pairs of that
  template as `{"resource_type", "resource_id", "action"}` records;
- context: `{"approver_id": <sub>}`.

Separation of duties beyond that is policy, e.g.
`forbid (principal, action == Action::"approve", resource is AccessRequest)
when { resource.subject_id == context.approver_id };`. One rule holds whatever the policies
say (`parties`): nobody approves a request made for them or through them — its subject,
every member of its `act` chain, the client that asked, the principal of a subject token or
assertion it was built from.
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
# Longer `act` chains than this are not looked through (no token endpoint makes them).
MAX_ACT_DEPTH = 16
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


def parties(task: TaskRecord) -> set[str]:
    """The identifiers of everyone the request was made for or through: the subject (the
    principal of the subject token or assertion a token request was built from), every
    `sub` of its `act` chain (actor tokens, the client acting), the requesting client
    (`client:<id>` requesters, `client.client_id`, `context.client_id`). Compared with an
    approver's `sub` as plain strings, whatever issuer named them: a coincidence refuses an
    approver who may be someone else, never the other way round."""
    found: set[str] = set()
    subject = task.subject if isinstance(task.subject, dict) else {}
    if isinstance(subject.get("id"), str):
        found.add(subject["id"])
    properties = subject.get("properties")
    act = properties.get("act") if isinstance(properties, dict) else None
    for _ in range(MAX_ACT_DEPTH):
        if not isinstance(act, dict):
            break
        if isinstance(act.get("sub"), str):
            found.add(act["sub"])
        act = act.get("act")
    if task.requester.startswith("client:"):
        found.add(task.requester.removeprefix("client:"))
    for holder in (task.client, task.context):
        if isinstance(holder, dict) and isinstance(holder.get("client_id"), str):
            found.add(holder["client_id"])
    return found


def is_party(approver: Approver, task: TaskRecord) -> bool:
    return approver.sub in parties(task)


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
