"""What the notifications part asks of the service, and the escalation of steps that waited
too long.

A notice names the step it was queued for; by the time it is delivered that step may have
been decided, so who is told is decided then, from the task as it is and the policies as
they are (`approvers_to_tell`). Escalation is a housekeeping chore: a step past its
template's `timeout_seconds` is marked escalated (once) and an `escalation` notice queued, in
one compare-and-set with its audit entry, so replicas escalate a step once between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..settings import AccessRequestSettings
from ..store.contract import TaskRecord
from . import audit_events
from .approvers import Approver, ApproverPolicy, Ask, is_party
from .emergency import asks_emergency, awaiting_review
from .lifecycle import TaskLifecycle, Transition
from .notices import EMERGENCY_REVIEW, ESCALATION, ApprovalNeeded, NoticeSummary
from .problems import InvalidTaskState, TaskExpired, UnknownTask
from .steps import current_step, due_for_escalation, has_approved, mark_escalated
from .tasks import PENDING, TaskURLs, describe, progress
from .templates import TemplateCatalog

PAGE_PATH = "/approvals"
_ESCALATION_SCAN = 1000


def page_path(task_id: str) -> str:
    return f"{PAGE_PATH}/{task_id}"


class Notifying(TaskLifecycle):
    approvers: ApproverPolicy
    settings: AccessRequestSettings
    templates: TemplateCatalog
    urls: TaskURLs

    @staticmethod
    def describe_item(item: dict[str, Any]) -> str:
        return describe(item)

    @staticmethod
    def progress_of(item: dict[str, Any]) -> dict[str, Any]:
        """An item's `progress` (`tasks.progress`), without `awaiting` once it is decided."""
        out = progress(item)
        if item.get("status") != PENDING:
            del out["awaiting"]
        return out

    async def approvers_to_tell(
        self, notice: ApprovalNeeded, candidates: Sequence[Approver]
    ) -> list[Approver]:
        """The candidates policy lets act on `notice` now: decide (or review) the step it
        names. None when the notice is stale (the task or the step has moved on)."""
        try:
            task = await self.fetch(notice.task_id, None)
        except (UnknownTask, TaskExpired):
            return []
        if not 0 <= notice.item < len(task.items):
            return []
        item = task.items[notice.item]
        if not _still_waits(notice, item):
            return []
        ask = Ask(task, item["template"], current_step(item).name)
        told = []
        for candidate in candidates:
            if is_party(candidate, task) or has_approved(
                item, candidate.subject_type, candidate.sub
            ):
                continue
            if (await self.approvers.allowed(candidate, [ask]))[0]:
                told.append(candidate)
        return told

    async def notice_summary(self, task_id: str, notice: ApprovalNeeded) -> NoticeSummary:
        """The task in words for a message about `notice`."""
        task = await self.fetch(task_id, None)
        item = task.items[notice.item] if 0 <= notice.item < len(task.items) else task.items[0]
        template = self.templates.template(task.pdp, item["template"])
        step = template.steps[min(notice.step, len(template.steps) - 1)]
        subject = task.subject if isinstance(task.subject, dict) else {}
        access = task.requested_access if isinstance(task.requested_access, dict) else {}
        justification = access.get("justification") or (task.context or {}).get(
            "business_justification"
        )
        return NoticeSummary(
            task_id=task.id,
            status=task.status,
            subject=f"{subject.get('type', '')} {subject.get('id', '')}".strip(),
            client=client_name(task),
            what=tuple(self.describe_item(i) for i in task.items),
            template=template.name,
            template_description=template.description,
            step_name=step.name,
            step_number=notice.step + 1,
            total_steps=len(template.steps),
            emergency=any(asks_emergency(task, i) for i in task.items),
            justification=justification if isinstance(justification, str) else None,
            expires_at=task.expires_at,
            page_path=page_path(task.id),
            current=_still_waits(notice, item),
        )

    async def record_notified(self, notice: ApprovalNeeded, recipient: str, channel: str) -> None:
        """The audit entry for a message delivered about `notice`."""
        event = audit_events.notified(
            notice.task_id, recipient, channel, notice.reason, notice.step, self.clock()
        )
        await self.store.audit_append([event])

    async def escalate_due(self) -> int:
        """Escalate the steps past their timeout; how many were escalated."""
        now = self.clock()
        escalated = 0
        for task in await self.store.tasks_pending(_ESCALATION_SCAN):
            if not any(i["status"] == PENDING and due_for_escalation(i, now) for i in task.items):
                continue

            async def compute(current: TaskRecord, at: float) -> Transition:
                items: list[dict[str, Any]] = [dict(i) for i in current.items]
                change = Transition(items)
                if not any(i["status"] == PENDING and due_for_escalation(i, at) for i in items):
                    raise InvalidTaskState("escalated meanwhile")
                for n, item in enumerate(current.items):
                    if item["status"] == PENDING and due_for_escalation(item, at):
                        step = current_step(item)
                        items[n] = mark_escalated(item)
                        notice = ApprovalNeeded(
                            current.id, ESCALATION, item["template"], step.index, n
                        )
                        change.outbox.append(notice.outbox_row())
                        change.audit.append(audit_events.escalated(current, n, step.name, at))
                return change

            try:
                await self.transition(task.id, None, compute)
            except (InvalidTaskState, UnknownTask, TaskExpired):
                continue  # decided, expired or escalated by another replica meanwhile
            escalated += 1
        return escalated


def _still_waits(notice: ApprovalNeeded, item: dict[str, Any]) -> bool:
    if notice.reason == EMERGENCY_REVIEW:
        return awaiting_review(item)
    return item["status"] == PENDING and current_step(item).index == notice.step


def client_name(task: TaskRecord) -> str | None:
    """The client a request came through: ARAP's `client.id`, the context's `client_id`, or
    the OAuth client that filed it."""
    for holder, member in (
        (task.client, "id"),
        (task.client, "client_id"),
        (task.context, "client_id"),
    ):
        if isinstance(holder, dict) and isinstance(holder.get(member), str):
            return str(holder[member])
    if task.requester.startswith("client:"):
        return task.requester.removeprefix("client:")
    return None
