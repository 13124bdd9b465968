"""CAEP `token-claims-change` and `assurance-level-change` about a person: their pending access
requests and their approvals in force are decided again by the policies, with the new facts
as properties of the subject:

- `token-claims-change`: each member of `claims` (a claim and its new value) is a property
  of that name (`act` excepted: who acts is the request's own);
- `assurance-level-change`: `assurance_level` is `current_level`, `assurance_namespace` is
  `namespace`.

A pending item the policies now deny outright (not requestably) is denied; an approval the
policies no longer permit with (asked as a PEP would, with it in `context.approval`) is
revoked, with the access tokens issued under it. Each change names the event as its source,
and one `subject_reevaluated` entry records the facts and what they changed. The facts are
not kept: later decisions are made with what their requests carry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..access_requests.subject_events import SubjectEvents
from ..access_requests.tasks import PENDING
from ..access_requests.times import rfc3339
from ..authzen.models import EvaluationRequest, EvaluationsSemantic
from ..authzen.pdp import PDP
from ..store.contract import ApprovalRecord, AuditStore, SubjectStore, TaskRecord
from ..store.contract.access_requests import subject_key
from . import event_audit
from .event_types import ASSURANCE_LEVEL_CHANGE, TOKEN_CLAIMS_CHANGE
from .incoming import Incoming
from .set_errors import InvalidRequest

log = logging.getLogger("bridge.events")

DENIED_REASON = "the policies deny it with the facts of an event"
REVOKED_REASON = "the policies no longer permit it with the facts of an event"


class Store(SubjectStore, AuditStore, Protocol):
    """The approvals of a subject, and the audit trail."""


def facts_of(event_type: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The subject properties an event says; `InvalidRequest` when it does not conform to
    its definition (CAEP 1.0 §3.2, §3.4)."""
    if event_type == TOKEN_CLAIMS_CHANGE:
        claims = event.get("claims")
        if not isinstance(claims, dict) or not claims:
            raise InvalidRequest("token-claims-change needs claims, a non-empty object")
        return {name: value for name, value in claims.items() if name != "act"}
    if event_type == ASSURANCE_LEVEL_CHANGE:
        namespace, level = event.get("namespace"), event.get("current_level")
        if not isinstance(namespace, str) or not isinstance(level, str):
            raise InvalidRequest("assurance-level-change needs namespace and current_level")
        return {"assurance_level": level, "assurance_namespace": namespace}
    raise InvalidRequest("not an event that changes facts")


def with_facts(subject: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    properties = dict(subject.get("properties") or {})
    properties.update(facts)
    return {"type": subject["type"], "id": subject["id"], "properties": properties}


class ReevaluateSubject:
    def __init__(
        self,
        store: Store,
        requests: SubjectEvents,
        deciders: Mapping[str, PDP],
        *,
        clock: Callable[[], float],
    ) -> None:
        """`deciders`: each embedded store's own engine by its PDP identifier (the facts and
        an approval are given to it as they are, not as a PEP's request)."""
        self._store = store
        self._requests = requests
        self._deciders = deciders
        self._clock = clock

    def check(self, incoming: Incoming) -> None:
        facts_of(incoming.event.event_type, incoming.event.event)

    async def __call__(self, incoming: Incoming) -> None:
        facts = facts_of(incoming.event.event_type, incoming.event.event)
        person = incoming.person()
        if person is None:
            log.info(
                "an event from %s names no subject the bridge knows", incoming.transmitter.name
            )
            return
        denied: list[dict[str, Any]] = []
        for task in await self._requests.pending_of(person.as_json()):
            items = await self._denied_items(task, facts)
            if items and await self._requests.deny_items(
                task.id, items, incoming.approver, DENIED_REASON, incoming.source
            ):
                denied.append({"task_id": task.id, "items": items})
        revoked = []
        now = self._clock()
        for approval in await self._store.approvals_of_subject(subject_key(person.as_json()), now):
            if not await self._still_permitted(approval, facts) and await self._requests.revoke(
                approval, incoming.approver, REVOKED_REASON, incoming.source
            ):
                revoked.append(approval.id)
        outcome = {"denied": denied, "revoked": revoked}
        await self._store.audit_append(
            [
                event_audit.subject_reevaluated(
                    person, incoming.approver.key, incoming.source, facts, outcome, now
                )
            ]
        )
        log.info(
            "%s %s decided again with new facts from %s: %d request(s) denied, %d approval(s) "
            "revoked",
            person.type,
            person.id,
            incoming.transmitter.name,
            len(denied),
            len(revoked),
        )

    async def _denied_items(self, task: TaskRecord, facts: Mapping[str, Any]) -> list[int]:
        """The pending items the policies now deny outright."""
        pdp = self._deciders.get(task.pdp)
        pending = [n for n, item in enumerate(task.items) if item["status"] == PENDING]
        if pdp is None or not pending:
            return []
        subject = with_facts(task.subject, facts)
        asked = [
            EvaluationRequest.model_validate(
                {
                    "subject": subject,
                    "resource": task.items[n]["resource"],
                    "action": task.items[n]["action"],
                    "context": task.context,
                }
            )
            for n in pending
        ]
        decisions = await pdp.evaluations(asked, EvaluationsSemantic.execute_all)
        return [
            n
            for n, decision in zip(pending, decisions, strict=False)
            if not decision.decision and decision.requestable is None
        ]

    async def _still_permitted(self, approval: ApprovalRecord, facts: Mapping[str, Any]) -> bool:
        pdp = self._deciders.get(approval.pdp)
        binding = approval.binding if isinstance(approval.binding, dict) else {}
        if pdp is None or not binding:
            return True  # nothing to ask: the approval stays as it is
        context = {
            **(binding.get("context") or {}),
            "approval": {
                "id": approval.id,
                "template": approval.template,
                "approved_until": rfc3339(approval.approved_until),
            },
        }
        request = EvaluationRequest.model_validate(
            {
                "subject": with_facts(binding["subject"], facts),
                "resource": binding["resource"],
                "action": binding["action"],
                "context": context,
            }
        )
        return (await pdp.evaluate(request)).decision
