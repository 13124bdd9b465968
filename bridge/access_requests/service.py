"""`AccessRequestService`: the embedded ARS (ARAP §6 to §11) and the approver actions.

Submissions are checked against the denials they echo (`binding_token`, §3) and become
tasks; approvers decide them per item; requesters read and cancel them. The token endpoint
files its access requests through `submit_internal`, under the same rules. Requester ids
are namespaced: `pep:<id>` for callers of the HTTP API, `client:<client_id>` for the OAuth
clients the token endpoint files for, so neither can read the other's tasks.
"""

from __future__ import annotations

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
    TaskStore,
)
from .approvers import Approver, ApproverPolicy, is_party, pending_templates
from .binding import CanonicalizationError, digest, entity_json
from .binding_token import BindingTokens
from .decisions import DecisionInput, decide_items
from .lifecycle import RETENTION_SECONDS, TaskLifecycle
from .problems import BadRequest, DuplicateRequest, Forbidden, InvalidDenialBinding, NotRequestable
from .submission import parse_submission
from .tasks import CANCELLED, PENDING, TaskURLs, TaskView, approver_json
from .verification import bind_items

log = logging.getLogger("bridge.access_requests")

# Pending tasks looked at to build an approver's inbox.
INBOX_SCAN_LIMIT = 1000


def pep_requester(identity: str) -> str:
    return f"pep:{identity}"


def oauth_requester(client_id: str) -> str:
    return f"client:{client_id}"


@dataclass(frozen=True)
class DeniedEvaluation:
    """An evaluation the PDP denied requestably, and the context of that denial."""

    request: EvaluationRequest
    decision_context: JSONObject  # holds `access_request` (and `evaluation_id`, `reason`)


class AccessRequestService(TaskLifecycle):
    def __init__(
        self,
        store: TaskStore,
        tokens: BindingTokens,
        deciders: Mapping[str, PDP],
        settings: AccessRequestSettings,
        urls: TaskURLs,
        *,
        max_items: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`deciders`: each embedded store's inner (Cedar) PDP by PDP identifier; they
        decide who may approve."""
        super().__init__(store, clock)
        self.tokens = tokens
        self.approvers = ApproverPolicy(deciders)
        self.settings = settings
        self.urls = urls
        self.max_items = max_items

    # -- requesters ---------------------------------------------------------------------

    async def submit(
        self, body: JSONObject, requester: str, idempotency_key: str | None
    ) -> TaskView:
        """ARAP §6: a new pending task, or the task an equal earlier submission made."""
        now = self.clock()
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
        if idempotency_key is not None:
            keep_until = task.expires_at + RETENTION_SECONDS
            idempotency = IdempotencyRecord(
                requester, idempotency_key, body_hash, task.id, keep_until
            )
        try:
            stored, _ = await self.store.task_insert(task, idempotency, bound.jtis)
        except IdempotencyConflict:
            raise DuplicateRequest("this Idempotency-Key was used for another request") from None
        except BindingReused:
            raise InvalidDenialBinding("this denial was already submitted") from None
        return TaskView(stored)

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
        token request). Raises the same problems as `submit`."""
        if not denied:
            raise NotRequestable("nothing was denied")
        first = denied[0].request
        body: JSONObject = {"subject": entity_json(first.subject), "context": first.context or {}}
        items = [
            {
                "resource": entity_json(d.request.resource),
                "action": entity_json(d.request.action),
                "denial": _denial_of(d.decision_context),
            }
            for d in denied
        ]
        if len(items) == 1:
            body.update(items[0])
        else:
            body["items"] = items
        if client is not None:
            body["client"] = client
        return await self.submit(body, oauth_requester(client_id), idempotency_key)

    async def status(self, task_id: str, requester: str) -> TaskView:
        return TaskView(await self.fetch(task_id, requester))

    async def task(self, task_id: str) -> TaskView:
        """A task whoever filed it: for the bridge's own consumers (the deferral service,
        on a `task_terminal` outbox row). Same errors as `status`."""
        return TaskView(await self.fetch(task_id, None))

    async def cancel(self, task_id: str, requester: str) -> TaskView:
        """ARAP §10: pending items become cancelled; 409 when none is pending."""

        async def compute(task: TaskRecord, now: float) -> tuple[list[Any], list[Any]]:
            items = [
                {**i, "status": CANCELLED} if i["status"] == PENDING else i for i in task.items
            ]
            return items, []

        return await self.transition(task_id, requester, compute)

    # -- approvers ----------------------------------------------------------------------

    async def decide(
        self,
        task_id: str,
        approver: Approver,
        decision: str,
        items: list[int] | None = None,
        justification: str | None = None,
        approved_until: float | None = None,
    ) -> TaskView:
        """Approve or deny the given pending items (all pending items when None)."""
        wanted = DecisionInput(decision, items, justification, approved_until)
        wanted.check()

        async def compute(task: TaskRecord, now: float) -> tuple[list[Any], list[Any]]:
            if is_party(approver, task):
                raise Forbidden("an access request made for or through you is not yours to decide")
            chosen = wanted.chosen(task)
            templates = list(dict.fromkeys(task.items[n]["template"] for n in chosen))
            allowed = await self.approvers.allowed(approver, [(task, t) for t in templates])
            if not all(allowed):
                raise Forbidden("you may not decide this access request")
            return decide_items(task, chosen, approver, wanted, self.settings, now)

        view = await self.transition(task_id, None, compute)
        # The audit line: who decided what (the record keeps it as well).
        log.info(
            "access request %s: %s by %s %s (%s items), now %s",
            task_id,
            decision,
            approver.issuer,
            approver.sub,
            "all pending" if items is None else items,
            view.status,
        )
        return view

    async def tasks_for(self, approver: Approver, limit: int = 100) -> list[JSONObject]:
        """The pending tasks `approver` may act on (oldest first), as approver views."""
        await self.expire_due()
        pending = [
            task
            for task in await self.store.tasks_pending(INBOX_SCAN_LIMIT)
            if not is_party(approver, task)
        ]
        asked = [(task, t) for task in pending for t in pending_templates(task)]
        answers = await self.approvers.allowed(approver, asked)
        may = {(task.id, t) for (task, t), ok in zip(asked, answers, strict=True) if ok}
        out = []
        for task in pending:
            actionable = _actionable(task, may)
            if actionable:
                out.append(approver_json(task, actionable, self.urls))
        return out[:limit]

    async def task_for(self, task_id: str, approver: Approver) -> JSONObject:
        """One task as an approver sees it; 403 unless they may decide some of it."""
        task = await self.fetch(task_id, None)
        if is_party(approver, task):
            raise Forbidden("an access request made for or through you is not yours to decide")
        templates = list(dict.fromkeys(i["template"] for i in task.items))
        answers = await self.approvers.allowed(approver, [(task, t) for t in templates])
        if not any(answers):
            raise Forbidden("you may not decide this access request")
        may = {(task.id, t) for t, ok in zip(templates, answers, strict=True) if ok}
        return approver_json(task, _actionable(task, may), self.urls)

    async def revoke_approval(self, approval_id: str) -> bool:
        """Withdraw a granted approval before `approved_until` (an administrator's act):
        the PDP ignores it from now on. False when unknown or already revoked."""
        return await self.store.approval_revoke(approval_id, self.clock())


def _actionable(task: TaskRecord, may: set[tuple[str, str]]) -> list[int]:
    return [
        n
        for n, item in enumerate(task.items)
        if item["status"] == PENDING and (task.id, item["template"]) in may
    ]


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
    "Approver",
    "DeniedEvaluation",
    "TaskView",
    "oauth_requester",
    "pep_requester",
]
