"""The bridge's own event `urn:authzen-bridge:event-type:access-request-open`: another system
asks for access on a person's behalf, and the request follows the ordinary path.

    sub_id: the person (as every event names one: `opaque`, `email`, `iss_sub`, `complex`)
    event:  {"resource": {"type", "id", "properties"?}, "action": {"name", "properties"?},
             "context"?: {...}, "justification"?: "..."}

The transmitter's store (`events.transmitters.store`) decides the evaluation, as its AuthZEN
API would; a requestable denial is then submitted to the access request service with its
binding, by the requester `transmitter:<name>`, with the SET's `jti` as idempotency key, and
the audit trail records `opened_by_event` beside `filed`. A permit needs no request, and a
plain denial cannot be requested: both are acknowledged and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from ..access_requests.problems import AccessRequestProblem
from ..access_requests.service import AccessRequestService
from ..authzen.models import EvaluationRequest, requestable_denial
from ..authzen.pdp import PDP
from ..store.contract import AuditStore
from . import event_audit
from .incoming import Incoming
from .set_errors import InvalidRequest

log = logging.getLogger("bridge.events")

MAX_JUSTIFICATION = 1000


def requester_of(incoming: Incoming) -> str:
    return f"transmitter:{incoming.transmitter.name}"


class OpenRequest:
    def __init__(
        self,
        service: AccessRequestService,
        pdps: Mapping[str, PDP],
        audit: AuditStore,
        clock: Callable[[], float],
    ) -> None:
        """`pdps`: each store's decision point (with ARAP's requestable denials), by name."""
        self._service = service
        self._pdps = pdps
        self._audit = audit
        self._clock = clock

    def check(self, incoming: Incoming) -> None:
        self._evaluation(incoming)

    def _evaluation(self, incoming: Incoming) -> EvaluationRequest:
        person = incoming.person()
        if person is None:
            raise InvalidRequest("sub_id names no subject the bridge knows")
        event = incoming.event.event
        justification = event.get("justification")
        if justification is not None and (
            not isinstance(justification, str) or len(justification) > MAX_JUSTIFICATION
        ):
            raise InvalidRequest(f"justification must be a string of at most {MAX_JUSTIFICATION}")
        context = event.get("context", {})
        try:
            return EvaluationRequest.model_validate(
                {
                    "subject": person.as_json(),
                    "resource": event.get("resource"),
                    "action": event.get("action"),
                    "context": context,
                }
            )
        except ValidationError:
            raise InvalidRequest(
                "resource, action and context must be those of an AuthZEN evaluation"
            ) from None

    async def __call__(self, incoming: Incoming) -> None:
        evaluation = self._evaluation(incoming)
        store = incoming.transmitter.settings.store
        pdp = self._pdps.get(store)
        if pdp is None:
            raise InvalidRequest("the transmitter's policy store is not served")
        decision = await pdp.evaluate(evaluation)
        if not requestable_denial(decision):
            log.info(
                "an access request opened by %s needs no approval or cannot have one (%s)",
                incoming.transmitter.name,
                "permitted" if decision.decision else "denied",
            )
            return
        body = _submission(evaluation, decision.context or {}, incoming)
        try:
            task = await self._service.submit(
                body, requester_of(incoming), incoming.event.jti[:255]
            )
        except AccessRequestProblem as problem:
            raise InvalidRequest(f"the access request was refused: {problem}") from None
        await self._audit.audit_append(
            [
                event_audit.opened_by_event(
                    task.id, incoming.approver.key, incoming.source, self._clock()
                )
            ]
        )
        log.info("access request %s opened by %s", task.id, incoming.transmitter.name)


def _submission(
    evaluation: EvaluationRequest, context: Mapping[str, Any], incoming: Incoming
) -> dict[str, Any]:
    asked = context["access_request"]
    denial = {k: asked[k] for k in ("expires_at", "binding_token", "template") if k in asked}
    for name in ("evaluation_id", "evaluated_at", "reason"):
        if name in context:
            denial[name] = context[name]
    body: dict[str, Any] = evaluation.model_dump(exclude_none=True)
    body["context"] = evaluation.context or {}
    body["denial"] = denial
    justification = incoming.event.event.get("justification")
    if isinstance(justification, str):
        body["requested_access"] = {"justification": justification}
    return body
