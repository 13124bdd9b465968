"""`AccessRequestService`: the embedded ARS (ARAP §6 to §11), the requesters' side.

Submissions are checked against the denials they echo (`binding_token`, §3) and become
tasks, each item carrying the steps of its approval template; requesters read and cancel
them. The token endpoint files its access requests through `submit_internal`, under the
same rules. Requester ids are namespaced: `pep:<id>` for callers of the HTTP API,
`client:<client_id>` for the OAuth clients the token endpoint files for, so neither can
read the other's tasks. What approvers do is in `approving.ApproverActions`.

Beside the binding, a submission is checked against the companion profiles: a claimed
`client.actor` must be proven by the caller's credential (`actors`, the Actor profile), and
each item must carry what its template's request form requires (`forms`, the Catalog
profile).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..authzen.models import EvaluationRequest, JSONObject
from ..authzen.pdp import PDP
from ..settings import AccessRequestSettings
from ..store.contract import (
    BindingReused,
    IdempotencyConflict,
    IdempotencyRecord,
    TaskRecord,
    subject_key,
)
from . import audit_events, callbacks
from .actors import ActorProof, actor_from_act, read_client, verify_actor
from .approvers import Approver, ApproverPolicy
from .approving import ApproverActions
from .binding import CanonicalizationError, digest, entity_json
from .binding_token import BindingTokens
from .emergency import Emergencies
from .forms import RequestForms, form_instance
from .lifecycle import RETENTION_SECONDS, TASK_TERMINAL, ServiceStore, Transition
from .notices import DECIDE, ApprovalNeeded
from .problems import (
    BadRequest,
    DuplicateRequest,
    InvalidDenialBinding,
    NotRequestable,
    UnknownTask,
)
from .steps import initial_steps
from .submission import parse_submission
from .tasks import CANCELLED, PENDING, TaskURLs, TaskView, aggregate
from .templates import TemplateCatalog
from .verification import bind_items

log = logging.getLogger("bridge.access_requests")


def pep_requester(identity: str) -> str:
    return f"pep:{identity}"


def oauth_requester(client_id: str) -> str:
    return f"client:{client_id}"


@dataclass(frozen=True)
class DeniedEvaluation:
    """An evaluation the PDP denied requestably, and the context of that denial."""

    request: EvaluationRequest
    decision_context: JSONObject  # holds `access_request` (and `evaluation_id`, `reason`)
    # What was asked, in the words of its RAR profile ("Export customer record cust-0001"),
    # shown to approvers as ARAP's `requested_access.description`.
    description: str | None = None


class AccessRequestService(ApproverActions):
    def __init__(
        self,
        store: ServiceStore,
        tokens: BindingTokens,
        deciders: Mapping[str, PDP],
        settings: AccessRequestSettings,
        urls: TaskURLs,
        *,
        templates: TemplateCatalog | None = None,
        forms: RequestForms | None = None,
        max_items: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`deciders`: each embedded store's inner (Cedar) PDP by PDP identifier; they
        decide who may approve. `templates`: each store's approval templates (none: every
        template is one step needing one approval); `forms`: their request forms."""
        super().__init__(store, clock)
        self.tokens = tokens
        self.approvers = ApproverPolicy(deciders)
        self.templates = templates or TemplateCatalog({})
        api_url = urls.requests_url.rsplit("/", 1)[0]
        self.forms = forms or RequestForms(self.templates, public_url="", api_url=api_url)
        self.emergencies = Emergencies(self.approvers, settings)
        self.settings = settings
        self.urls = urls
        self.max_items = max_items

    # -- requesters ---------------------------------------------------------------------

    async def submit(
        self,
        body: JSONObject,
        requester: str,
        idempotency_key: str | None,
        *,
        proof: ActorProof | None = None,
    ) -> TaskView:
        """ARAP §6: a new pending task, or the task an equal earlier submission made.
        `proof`: what the caller's credential proves of who acts (a `client.actor` it does
        not prove is refused)."""
        now = self.clock()
        subject = body.get("subject")
        verify_actor(
            read_client(body.get("client")), subject if isinstance(subject, dict) else {}, proof
        )
        idempotency, body_hash = None, ""
        if idempotency_key is not None:
            try:
                body_hash = digest(body)
            except CanonicalizationError:
                raise BadRequest("the body holds a number JCS cannot represent") from None
            earlier = await self.store.idempotency_find(requester, idempotency_key, now)
            if earlier is not None and earlier.body_hash != body_hash:
                raise DuplicateRequest("this Idempotency-Key was used for another request")
            if earlier is not None:
                return TaskView(await self.fetch(earlier.task_id, requester))
        submission = parse_submission(
            body,
            max_items=self.max_items,
            allow_private_callbacks=self.settings.allow_private_callbacks,
        )
        bound = await bind_items(self.tokens, submission)
        if not submission.bundle and submission.requested_access is not None:
            # A single request's `requested_access` is its one item's (its words, its end).
            bound.items[0].setdefault("requested_access", submission.requested_access)
        for n, item in enumerate(bound.items):
            form = self.forms.form(bound.pdp, item["template"])
            if form is not None:
                instance = form_instance(
                    submission.context,
                    item["denial"]["members"],
                    submission.requested_access,
                    item.get("requested_access"),
                )
                self.forms.check(form, instance, f"items[{n}]" if submission.bundle else "it")
        for item in bound.items:
            item.update(initial_steps(self.templates.template(bound.pdp, item["template"]), now))
        task = TaskRecord(
            id="arq_" + secrets.token_urlsafe(24),
            pdp=bound.pdp,
            requester=requester,
            bundle=submission.bundle,
            subject=submission.subject,
            context=submission.context,
            items=bound.items,
            requested_access=submission.requested_access,
            callback=submission.callback,
            client=submission.client,
            status=PENDING,
            created_at=now,
            expires_at=now + self.settings.request_lifetime_seconds,
            retain_until=now + self.settings.request_lifetime_seconds,
            updated_at=now,
        )
        task, filing = await self._filing(task, now)
        if idempotency_key is not None:
            keep_until = task.expires_at + RETENTION_SECONDS
            idempotency = IdempotencyRecord(
                requester, idempotency_key, body_hash, task.id, keep_until
            )
        try:
            stored, _ = await self.store.task_insert(
                task,
                idempotency,
                bound.jtis,
                outbox=filing.outbox,
                audit=filing.audit,
                approvals=filing.approvals,
            )
        except IdempotencyConflict:
            raise DuplicateRequest("this Idempotency-Key was used for another request") from None
        except BindingReused:
            raise InvalidDenialBinding("this denial was already submitted") from None
        return TaskView(stored)

    async def _filing(self, task: TaskRecord, now: float) -> tuple[TaskRecord, Transition]:
        """What goes with a new task: emergency approvals policy grants at once, the
        notices for the approvers of each waiting step, the audit entry. A task approved
        whole at filing is terminal from the start, with what ending brings (the
        `task_terminal` row, the callback)."""
        templates = {
            i["template"]: self.templates.template(task.pdp, i["template"]) for i in task.items
        }
        change = await self.emergencies.at_filing(task, templates, now)
        version = self.approvers.version(task.pdp)
        change.audit.insert(0, audit_events.filed(task, version))
        waiting: dict[str, int] = {}
        for n, item in enumerate(change.items):
            if item["status"] == PENDING:
                waiting.setdefault(str(item["template"]), n)
        for template, n in waiting.items():
            change.outbox.append(ApprovalNeeded(task.id, DECIDE, template, 0, n).outbox_row())
        status = aggregate(str(i["status"]) for i in change.items)
        if status != PENDING:
            change.outbox.append((TASK_TERMINAL, task.id.encode("utf-8")))
            if callbacks.wants(task.callback, status):
                change.outbox.append((callbacks.KIND, callbacks.callback_payload(task.id, status)))
            task = dataclasses.replace(task, retain_until=task.expires_at + RETENTION_SECONDS)
        return dataclasses.replace(task, items=change.items, status=status), change

    async def submit_internal(
        self,
        denied: Sequence[DeniedEvaluation],
        *,
        client_id: str,
        idempotency_key: str | None = None,
        client: JSONObject | None = None,
    ) -> TaskView:
        """The token endpoint's submission for `client_id`: one denial → a single request,
        several → a bundle with a denial per item. All must share subject and context (one
        token request). The token request's `act` chain (in the subject, as the token
        endpoint verified it) becomes `client.actor`, and proves a `client.actor` given in
        `client`. Raises the same problems as `submit`."""
        if not denied:
            raise NotRequestable("nothing was denied")
        first = denied[0].request
        subject = entity_json(first.subject)
        body: JSONObject = {"subject": subject, "context": first.context or {}}
        act = (subject.get("properties") or {}).get("act")
        act = act if isinstance(act, dict) else None
        items = [
            {
                "resource": entity_json(d.request.resource),
                "action": entity_json(d.request.action),
                "denial": _denial_of(d.decision_context),
                **({"requested_access": {"description": d.description}} if d.description else {}),
            }
            for d in denied
        ]
        if len(items) == 1:
            body.update(items[0])
        else:
            body["items"] = items
        filed_for = {"id": client_id, **({"actor": actor_from_act(act)} if act else {})}
        body["client"] = {**filed_for, **(client or {})}
        proof = ActorProof(subject.get("id"), act)
        return await self.submit(body, oauth_requester(client_id), idempotency_key, proof=proof)

    async def status(self, task_id: str, requester: str) -> TaskView:
        return TaskView(await self.fetch(task_id, requester))

    async def task(self, task_id: str) -> TaskView:
        """A task whoever filed it: for the bridge's own consumers (the deferral service,
        on a `task_terminal` outbox row). Same errors as `status`."""
        return TaskView(await self.fetch(task_id, None))

    async def cancel(self, task_id: str, requester: str, *, by: str | None = None) -> TaskView:
        """ARAP §10: pending items become cancelled; 409 when none is pending. `by`: who
        cancelled, for the audit trail, when not the requester (the person it was for)."""

        async def compute(task: TaskRecord, now: float) -> Transition:
            items = [
                {**i, "status": CANCELLED} if i["status"] == PENDING else i for i in task.items
            ]
            return Transition(items, audit=[audit_events.cancelled(task, by or requester, now)])

        return await self.transition(task_id, requester, compute)

    async def cancel_own(self, task_id: str, subject: dict[str, Any]) -> TaskView:
        """The person a request was made for cancels it (the pages' "My requests"); a
        request for someone else is unknown to them."""
        task = await self.fetch(task_id, None)
        if subject_key(task.subject) != subject_key(subject):
            raise UnknownTask("no such access request")
        return await self.cancel(task_id, task.requester, by="person:" + subject_key(subject))


def _denial_of(context: JSONObject) -> JSONObject:
    request = context.get("access_request")
    if not isinstance(request, dict):
        raise NotRequestable("the evaluation was not a requestable denial")
    denial = {k: request[k] for k in ("expires_at", "binding_token", "template") if k in request}
    for name in ("evaluation_id", "evaluated_at", "reason"):
        if name in context:
            denial[name] = context[name]
    return denial


__all__ = [
    "AccessRequestService",
    "ApprovalNeeded",
    "Approver",
    "DeniedEvaluation",
    "TaskView",
    "oauth_requester",
    "pep_requester",
]
