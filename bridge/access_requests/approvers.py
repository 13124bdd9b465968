"""Who may decide an access request: a Cedar decision of the store whose policy denied.

For each approval template (and step) among the items in question the bridge asks the
store's PDP:

- subject: the approver, `{"type": <approver issuer's subject_type>, "id": <sub>}`;
- action: `approve` (deciding), `revoke` (withdrawing a granted approval), or
  `approve_emergency` (with the requester's subject as the principal: may policy approve
  this emergency request at once);
- resource: `{"type": "AccessRequest", "id": <task id>, "properties": {...}}` with
  `template` (the `@approval` template), `step` (the name of the template's step the items
  wait on; `approve` for a one-step template), `emergency` (the request says so),
  `requester` (`pep:<id>` or `client:<client id>`), `subject_type` and `subject_id` (whose
  access is requested) and `items`, the pairs of that template as `{"resource_type",
  "resource_id", "action"}` records;
- context: `{"approver_id": <sub>}`.

Separation of duties beyond that is policy, e.g.
`forbid (principal, action == Action::"approve", resource is AccessRequest)
when { resource.subject_id == context.approver_id };`. One rule holds whatever the policies
say (`parties`): nobody approves a request made for them or through them — its subject,
every member of its `act` chain, the client that asked, the principal of a subject token or
assertion it was built from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..authzen.models import EvaluationRequest, EvaluationsSemantic
from ..authzen.pdp import PDP, policy_version
from ..store.contract import TaskRecord
from .actors import chain_ids
from .steps import current_step
from .tasks import PENDING

log = logging.getLogger("bridge.access_requests")

APPROVE_ACTION = "approve"
REVOKE_ACTION = "revoke"
EMERGENCY_ACTION = "approve_emergency"
# Longer `act` chains than this are not looked through (no token endpoint makes them).
MAX_ACT_DEPTH = 16
ACCESS_REQUEST_TYPE = "AccessRequest"


@dataclass(frozen=True, slots=True)
class Approver:
    """An authenticated approver: the issuer of their token, their subject type and `sub`."""

    issuer: str
    subject_type: str
    sub: str

    @property
    def key(self) -> str:
        """Who this approver is, as records and the audit trail name them: issuer, subject
        type and `sub` as a JSON array (no separator to escape)."""
        return json.dumps([self.issuer, self.subject_type, self.sub], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Ask:
    """One question to the policies about a task: may the approver take `action` on the
    items of `template` waiting at `step`?"""

    task: TaskRecord
    template: str
    step: str
    action: str = APPROVE_ACTION


def approve_request(approver: Approver, ask: Ask) -> EvaluationRequest:
    task, template = ask.task, ask.template
    emergency = any(
        isinstance(access, dict) and access.get("emergency") is True
        for access in [task.requested_access, *(i.get("requested_access") for i in task.items)]
    )
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
            "action": {"name": ask.action},
            "resource": {
                "type": ACCESS_REQUEST_TYPE,
                "id": task.id,
                "properties": {
                    "template": template,
                    "step": ask.step,
                    "emergency": emergency,
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
    `sub` of its `act` chain (actor tokens, the client acting) and every actor of its
    `client.actor` chain, the requesting client
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
    found.update(chain_ids(task.client))  # a verified `client.actor` chain (Actor profile)
    if task.requester.startswith("client:"):
        found.add(task.requester.removeprefix("client:"))
    for holder in (task.client, task.context):
        if isinstance(holder, dict) and isinstance(holder.get("client_id"), str):
            found.add(holder["client_id"])
    return found


def is_party(approver: Approver, task: TaskRecord) -> bool:
    return approver.sub in parties(task)


def pending_asks(task: TaskRecord) -> list[Ask]:
    """What deciding the task's pending items takes: one ask per template and waiting step."""
    asks = {
        (i["template"], current_step(i).name): Ask(task, i["template"], current_step(i).name)
        for i in task.items
        if i["status"] == PENDING
    }
    return list(asks.values())


class ApproverPolicy:
    """Asks each store's PDP (keyed by its PDP identifier) who may approve what."""

    def __init__(self, deciders: Mapping[str, PDP]) -> None:
        self._deciders = deciders

    def version(self, pdp_id: str) -> str | None:
        """The version of the policies the store `pdp_id` decides with now (for audit)."""
        pdp = self._deciders.get(pdp_id)
        return None if pdp is None else policy_version(pdp)

    async def allowed(self, approver: Approver, asks: Iterable[Ask]) -> list[bool]:
        """One answer per ask. One batch per store; a failed item or a store that is not
        configured answers no."""
        asked = list(asks)
        answers = [False] * len(asked)
        by_pdp: dict[str, list[int]] = {}
        for n, ask in enumerate(asked):
            by_pdp.setdefault(ask.task.pdp, []).append(n)
        for pdp_id, members in by_pdp.items():
            pdp = self._deciders.get(pdp_id)
            if pdp is None:
                log.warning("no policy store %s to decide approvers", pdp_id)
                continue
            requests = [approve_request(approver, asked[n]) for n in members]
            decisions = await pdp.evaluations(requests, EvaluationsSemantic.execute_all)
            for n, decision in zip(members, decisions, strict=False):
                answers[n] = decision.decision
        return answers
