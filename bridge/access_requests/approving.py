"""What approvers do to access requests: decide a step, revoke a granted approval, review an
emergency approval. Every action is checked when it is taken: the policies' answer now
(`approve`, `revoke`), and the rule that nobody decides a request made for or through them.

The approval pages and the approver API both call these; a decision reaches a waiting
client the same way whichever path it took (the task's end queues `task_terminal`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..store.contract import ApprovalRecord, TaskRecord
from . import audit_events
from .approvers import REVOKE_ACTION, Approver, Ask, is_party
from .decisions import DecisionInput, decide_items
from .emergency import REVIEW_DONE, awaiting_review
from .inbox import InboxQueries
from .lifecycle import Transition
from .problems import BadRequest, Forbidden, InvalidTaskState, UnknownTask
from .steps import current_step, has_approved
from .tasks import PENDING, TaskView

log = logging.getLogger("bridge.access_requests")

NOT_YOURS = "an access request made for or through you is not yours to decide"
MAX_REASON = 2000


class ApproverActions(InboxQueries):
    async def decide(
        self,
        task_id: str,
        approver: Approver,
        decision: str,
        items: list[int] | None = None,
        justification: str | None = None,
        approved_until: float | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> TaskView:
        """Approve or deny the given pending items (all pending items when None) at the
        step each waits on. `source`: what the decision came in (an event of another
        system, `subject_events`), recorded with each of its audit entries."""
        wanted = DecisionInput(decision, items, justification, approved_until)
        wanted.check()

        async def compute(task: TaskRecord, now: float) -> Transition:
            if is_party(approver, task):
                raise Forbidden(NOT_YOURS)
            wanted.check_until(self.settings, now)
            chosen = wanted.chosen(task)
            if wanted.decision == "approve" and any(
                has_approved(task.items[n], approver.subject_type, approver.sub) for n in chosen
            ):
                raise Forbidden(
                    "you have approved this access request already: another person takes this step"
                )
            asks = _asks(task, chosen)
            if not all(await self.approvers.allowed(approver, asks)):
                raise Forbidden("you may not decide this access request")
            if wanted.decision == "approve":
                self._form_holds(task, chosen)
            version = self.approvers.version(task.pdp)
            change = decide_items(task, chosen, approver, wanted, self.settings, now, version)
            return with_source(change, source)

        view = await self.transition(task_id, None, compute)
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

    def _form_holds(self, task: TaskRecord, chosen: Sequence[int]) -> None:
        """An item is approved only while its request form holds: a catalog value retired
        since the submission (Catalog profile) is approved by nobody; deny it instead."""
        for n in chosen:
            form = self.item_form(task, n)
            if form is not None and form["problems"]:
                raise InvalidTaskState(
                    f"item {n}'s request form no longer holds: " + "; ".join(form["problems"])
                )

    async def revoke(
        self, approval_id: str, approver: Approver | None, reason: str | None = None
    ) -> ApprovalRecord:
        """Withdraw a granted approval before `approved_until`. `approver` None is an
        operator (the command line), who needs no policy's leave. From then on the PDP
        ignores the approval, access tokens issued under it are revoked, and a deferral
        waiting on it ends in `access_denied` when it is next redeemed."""
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
            raise BadRequest(f"reason must be a string of at most {MAX_REASON} characters")
        approval = (await self.store.approvals_get([approval_id])).get(approval_id)
        now = self.clock()
        if approval is None or approval.approved_until <= now:
            raise UnknownTask("no such approval in force")
        if approval.revoked_at is not None:
            raise InvalidTaskState("the approval was already revoked")
        actor = audit_events.OPERATOR
        if approver is not None:
            await self._may_revoke(approver, approval)
            actor = approver.key
        event = audit_events.revoked(approval, actor, reason, now)
        if not await self.store.approval_revoke(approval_id, now, [event]):
            raise InvalidTaskState("the approval was already revoked")
        log.info(
            "approval %s of access request %s revoked by %s", approval_id, approval.task_id, actor
        )
        return approval

    async def _may_revoke(self, approver: Approver, approval: ApprovalRecord) -> None:
        task = await self.store.task_get(approval.task_id)
        if task is None:
            raise Forbidden("this approval's access request is gone: an operator may revoke it")
        if is_party(approver, task):
            raise Forbidden("an approval for or through you is not yours to revoke")
        # Whoever may take some step of the item may withdraw what the steps granted.
        steps = task.items[approval.item].get("steps") or [{"name": current_step({}).name}]
        asks = [Ask(task, approval.template, str(step["name"]), REVOKE_ACTION) for step in steps]
        if not any(await self.approvers.allowed(approver, asks)):
            raise Forbidden("you may not revoke this approval")

    async def review(self, task_id: str, approver: Approver, note: str | None = None) -> TaskView:
        """Confirm the emergency approvals of a task that wait for a review (to undo one,
        revoke it instead)."""
        if note is not None and len(note) > MAX_REASON:
            raise BadRequest(f"a note has at most {MAX_REASON} characters")
        for _ in range(8):
            task = await self.fetch(task_id, None)
            if is_party(approver, task):
                raise Forbidden("an access request made for or through you is not yours to review")
            waiting = [n for n, item in enumerate(task.items) if awaiting_review(item)]
            if not waiting:
                raise InvalidTaskState("nothing in this access request waits for a review")
            asks = [
                Ask(task, task.items[n]["template"], current_step(task.items[n]).name)
                for n in waiting
            ]
            if not all(await self.approvers.allowed(approver, asks)):
                raise Forbidden("you may not review this access request")
            now = self.clock()
            items: list[dict[str, Any]] = [dict(item) for item in task.items]
            change = Transition(items)
            for n in waiting:
                items[n]["emergency"] = {
                    **items[n]["emergency"],
                    "review": REVIEW_DONE,
                    "reviewed_by": approver.key,
                    "reviewed_at": now,
                }
                change.audit.append(audit_events.reviewed(task, n, approver.key, note, now))
            updated = await self._write(task, change, now, only_pending=False)
            if updated is not None:
                return TaskView(updated)
        raise InvalidTaskState("the access request is changing; try again")

    async def task_for(self, task_id: str, approver: Approver) -> dict[str, Any]:
        """One task as an approver sees it: one they may decide now, have acted on, or may
        review; 403 otherwise."""
        task = await self.fetch(task_id, None)
        if is_party(approver, task):
            raise Forbidden(NOT_YOURS)
        view = await self.approver_view(task, approver)
        if view is None:
            raise Forbidden("you may not decide this access request")
        return view


def with_source(change: Transition, source: dict[str, Any] | None) -> Transition:
    """`change` with `source` in the data of each of its audit entries."""
    if source is None:
        return change
    audit = [replace(e, data={**e.data, "source": source}) for e in change.audit]
    return replace(change, audit=audit)


def _asks(task: TaskRecord, chosen: Sequence[int]) -> list[Ask]:
    asks = {}
    for n in chosen:
        item = task.items[n]
        if item["status"] == PENDING:
            step = current_step(item).name
            asks[(item["template"], step)] = Ask(task, item["template"], step)
    return list(asks.values())
