"""What approvers and requesters list: an approver's inbox (what they may decide now, what
they decided), the emergency approvals waiting for their review, the approvals they granted
that are still in force, and a person's own requests.

Who sees what is asked of the policies when the list is made, as for a decision: the list
is the answer of this moment, never a record kept for the approver. Pages are cut by
creation time (`before`, exclusive), newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..store.contract import ApprovalRecord, AuditEntry, TaskRecord, subject_key
from .approvers import REVOKE_ACTION, Approver, Ask, is_party
from .emergency import awaiting_review
from .forms import RequestForms, form_instance
from .notifying import Notifying
from .problems import AccessRequestProblem, BadRequest
from .steps import approvers_of, current_step, has_approved
from .tasks import PENDING, TERMINAL, TaskView, approver_json

# Tasks read from the store for one page of a filtered list, at most.
SCAN_LIMIT = 1000
_BATCH = 100
MAX_PAGE = 100
PENDING_STATE = "pending"
DECIDED_STATE = "decided"
INBOX_STATES = (PENDING_STATE, DECIDED_STATE)


@dataclass(frozen=True)
class Page:
    """One page of a list: the entries, and the `before` of the next page (None: last)."""

    entries: list[dict[str, Any]]
    next_before: float | None


class InboxQueries(Notifying):
    forms: RequestForms

    def item_form(self, task: TaskRecord, n: int) -> dict[str, Any] | None:
        """Item `n`'s request form as approvers read it (`forms.RequestForms.shown`), with
        what keeps it from holding now; None when its template has no form."""
        item = task.items[n]
        try:
            form = self.forms.form(task.pdp, item["template"])
        except AccessRequestProblem:  # unreadable now: shown, and not approved, as broken
            unread = "the template's request form cannot be read now"
            return {"template": item["template"], "fields": [], "problems": [unread]}
        if form is None:
            return None
        members = item.get("denial", {}).get("members") or []
        instance = form_instance(
            task.context, members, task.requested_access, item.get("requested_access")
        )
        return self.forms.shown(form, instance)

    async def approver_view(self, task: TaskRecord, approver: Approver) -> dict[str, Any] | None:
        """The task as `approver` sees it, or None when it is not theirs to see: they may
        see a request whose items policy lets them decide at the step they wait on (or
        stopped at), and one they acted on; of those, they may decide the pending items
        they have not approved yet, and review emergency approvals."""
        if is_party(approver, task):
            return None
        mine = approver.key
        asks = {
            n: Ask(task, item["template"], current_step(item).name)
            for n, item in enumerate(task.items)
        }
        answers = await self.approvers.allowed(approver, asks.values())
        allowed = {n for n, ok in zip(asks, answers, strict=True) if ok}
        acted = any(_acted(item, mine) for item in task.items)
        if not (allowed or acted):
            return None
        actionable = [
            n
            for n in sorted(allowed)
            if task.items[n]["status"] == PENDING
            and not has_approved(task.items[n], approver.subject_type, approver.sub)
        ]
        review = [n for n in sorted(allowed) if awaiting_review(task.items[n])]
        body = approver_json(task, actionable, self.urls)
        for n, shown in enumerate(body["items"]):
            form = self.item_form(task, n)
            if form is not None:
                shown["form"] = form
        body["reviewable_items"] = review
        body["revoked_items"], body["revocable_items"] = await self._approvals_of(task, approver)
        body["progress"] = [self.progress_of(item) for item in task.items]
        body["templates"] = {}
        for item in task.items:
            template = self.templates.template(task.pdp, item["template"])
            body["templates"][template.name] = {
                "description": template.description,
                "steps": [step.name for step in template.steps],
            }
        return body

    async def _approvals_of(
        self, task: TaskRecord, approver: Approver
    ) -> tuple[list[int], list[int]]:
        """The items whose approval was revoked, and those whose approval, still in force,
        `approver` may revoke (policy's `revoke` at some step of the item)."""
        granted = {
            n: item["result"]["approval"]["id"]
            for n, item in enumerate(task.items)
            if isinstance(item.get("result"), dict) and "approval" in item["result"]
        }
        if not granted:
            return [], []
        records = await self.store.approvals_get(list(granted.values()))
        now = self.clock()
        revoked, in_force = [], []
        for n, approval_id in granted.items():
            record = records.get(approval_id)
            if record is not None and record.revoked_at is not None:
                revoked.append(n)
            elif record is not None and record.approved_until > now:
                in_force.append(n)
        asks = [
            (n, Ask(task, task.items[n]["template"], str(step["name"]), REVOKE_ACTION))
            for n in in_force
            for step in task.items[n].get("steps") or [{"name": current_step(task.items[n]).name}]
        ]
        answers = await self.approvers.allowed(approver, [ask for _, ask in asks])
        may = {n for (n, _), ok in zip(asks, answers, strict=True) if ok}
        return revoked, sorted(may)

    async def tasks_for(self, approver: Approver, limit: int = 100) -> list[dict[str, Any]]:
        """The pending tasks `approver` may act on now (oldest first), as approver views:
        the approver API's inbox."""
        await self.expire_due()
        out = []
        for task in await self.store.tasks_pending(SCAN_LIMIT):
            view = await self.approver_view(task, approver)
            if view is not None and view["actionable_items"]:
                out.append(view)
                if len(out) >= limit:
                    break
        return out

    async def inbox(
        self,
        approver: Approver,
        *,
        state: str = PENDING_STATE,
        template: str | None = None,
        before: float | None = None,
        limit: int = 20,
    ) -> Page:
        """One page of the approver's inbox, newest first: `pending` (what they may decide
        now) or `decided` (what they acted on), optionally of one template."""
        if state not in INBOX_STATES:
            raise BadRequest(f"state must be one of {', '.join(INBOX_STATES)}")
        limit = max(1, min(limit, MAX_PAGE))
        statuses = [PENDING] if state == PENDING_STATE else sorted(TERMINAL | {PENDING})
        mine = approver.key

        async def keep(task: TaskRecord) -> dict[str, Any] | None:
            if template is not None and all(i["template"] != template for i in task.items):
                return None
            view = await self.approver_view(task, approver)
            if view is None:
                return None
            if state == PENDING_STATE:
                return view if view["actionable_items"] else None
            return view if any(_acted(item, mine) for item in task.items) else None

        return await self._page(
            lambda b, n: self.store.tasks_recent(statuses, b, n), keep, before, limit
        )

    async def reviews_for(self, approver: Approver, limit: int = 50) -> list[dict[str, Any]]:
        """Emergency approvals waiting for a review this approver may give, newest first."""

        async def keep(task: TaskRecord) -> dict[str, Any] | None:
            if not any(awaiting_review(i) for i in task.items):
                return None
            view = await self.approver_view(task, approver)
            return view if view is not None and view["reviewable_items"] else None

        statuses = ["approved", "partial"]
        page = await self._page(
            lambda b, n: self.store.tasks_recent(statuses, b, n), keep, None, limit
        )
        return page.entries

    async def granted_by(self, approver: Approver, limit: int = 100) -> list[ApprovalRecord]:
        """The approvals `approver` granted that are still in force, newest first."""
        return await self.store.approvals_granted_by(approver.key, self.clock(), limit)

    async def requests_of(
        self, subject: dict[str, Any], before: float | None = None, limit: int = 20
    ) -> Page:
        """One page of the requests made for `subject` (a person's own), newest first, as
        their views: status, items and progress, never who decided."""
        key = subject_key(subject)
        limit = max(1, min(limit, MAX_PAGE))
        tasks = await self.store.tasks_of_subject(key, before, limit + 1)
        entries = [self.requester_view(task) for task in tasks[:limit]]
        next_before = tasks[limit - 1].created_at if len(tasks) > limit else None
        return Page(entries, next_before)

    def requester_view(self, task: TaskRecord) -> dict[str, Any]:
        body: dict[str, Any] = dict(TaskView(task).to_json(self.urls)["task"])
        body["created_at"] = task.created_at
        body["items"] = [
            {
                "what": self.describe_item(item),
                "status": item["status"],
                "progress": self.progress_of(item),
                **(
                    {"approved_until": item["result"]["approval"]["approved_until"]}
                    if item.get("result")
                    else {}
                ),
            }
            for item in task.items
        ]
        return body

    async def history(self, task_id: str) -> list[AuditEntry]:
        """The task's audit entries, oldest first."""
        return await self.store.audit_entries(task_id=task_id, limit=1000)

    async def _page(
        self,
        read: Any,
        keep: Any,
        before: float | None,
        limit: int,
    ) -> Page:
        entries: list[dict[str, Any]] = []
        scanned = 0
        cursor = before
        while scanned < SCAN_LIMIT:
            batch: Sequence[TaskRecord] = await read(cursor, _BATCH)
            for task in batch:
                scanned += 1
                cursor = task.created_at
                view = await keep(task)
                if view is not None:
                    entries.append(view)
                    if len(entries) == limit:
                        return Page(entries, task.created_at)
            if len(batch) < _BATCH:
                return Page(entries, None)
        return Page(entries, cursor)


def _acted(item: dict[str, Any], key: str) -> bool:
    """Whether the approver `key` approved a step of the item, decided it, or reviewed its
    emergency approval."""
    decided = item.get("decided_by")
    emergency = item.get("emergency")
    return (
        key in approvers_of(item)
        or (isinstance(decided, dict) and decided.get("key") == key)
        or (isinstance(emergency, dict) and emergency.get("reviewed_by") == key)
    )
