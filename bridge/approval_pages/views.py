"""What the approval pages show, read from the service's views (the JSON the approver API
answers with, the requester's view, the audit entries), so pages and API show the same facts.
Words only: no JSON, no keys, no binding material."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..access_requests.actors import chain_ids
from ..access_requests.times import parse_rfc3339
from ..store.contract import ApprovalRecord, AuditEntry


@dataclass(frozen=True)
class ItemView:
    number: int
    words: str
    template: str
    status: str
    step: str  # "step 1 of 2: manager"
    actionable: bool
    reviewable: bool
    approval_id: str | None
    approved_until: str | None
    revoked: bool = False  # its approval was withdrawn: nothing left to revoke
    revocable: bool = False  # its approval is in force and the viewer may revoke it
    # Its request form, field by field in the form's words (title, what was given), and
    # what keeps the form from holding now.
    form: tuple[tuple[str, str], ...] = ()
    form_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestView:
    id: str
    status: str
    created_at: str
    expires_at: str
    subject: str  # whose access: "user alice"
    through: tuple[str, ...]  # the `act` chain and the client, outermost first
    requester: str
    justification: str | None
    requested_until: str | None
    emergency: bool
    items: tuple[ItemView, ...]
    why: tuple[tuple[str, str], ...]  # (template, its description)
    source: tuple[tuple[str, str], ...] = ()  # where the request came from (client.source)

    @property
    def actionable(self) -> bool:
        return any(item.actionable for item in self.items)

    @property
    def reviewable(self) -> bool:
        return any(item.reviewable for item in self.items)

    @property
    def templates(self) -> list[str]:
        return list(dict.fromkeys(item.template for item in self.items))


def when(epoch: float | None) -> str:
    """A time as people read it on the pages (UTC, to the minute)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _when_text(text: object) -> str:
    parsed = parse_rfc3339(text)
    return when(parsed) if parsed is not None else ""


def request_view(body: Mapping[str, Any]) -> RequestView:
    actionable = set(body.get("actionable_items") or [])
    reviewable = set(body.get("reviewable_items") or [])
    revoked = set(body.get("revoked_items") or [])
    revocable = set(body.get("revocable_items") or [])
    progress = body.get("progress") or []
    items = []
    for n, item in enumerate(body.get("items") or []):
        step = progress[n] if n < len(progress) else {}
        approval = (item.get("result") or {}).get("approval") or {}
        items.append(
            ItemView(
                number=n,
                words=str(item.get("description") or ""),
                template=str(item.get("template", "")),
                status=str(item.get("status", "")),
                step=(
                    f"step {step.get('current_step')} of {step.get('total_steps')}: "
                    f"{step.get('step_name')}"
                    if step
                    else ""
                ),
                actionable=n in actionable,
                reviewable=n in reviewable,
                approval_id=approval.get("id"),
                approved_until=_when_text(approval.get("approved_until")) or None,
                revoked=n in revoked,
                revocable=n in revocable,
                form=form_fields(item.get("form")),
                form_problems=tuple(
                    str(p) for p in ((item.get("form") or {}).get("problems") or [])
                ),
            )
        )
    subject = body.get("subject") or {}
    asked = body.get("requested_access") or {}
    context = body.get("context") or {}
    justification = asked.get("justification") or context.get("business_justification")
    templates = body.get("templates") or {}
    return RequestView(
        id=str(body["id"]),
        status=str(body.get("status", "")),
        created_at=_when_text(body.get("created_at")),
        expires_at=_when_text(body.get("expires_at")),
        subject=f"{subject.get('type', '')} {subject.get('id', '')}".strip(),
        through=tuple(act_chain(subject, body.get("client"), context)),
        requester=str(body.get("requester", "")),
        justification=justification if isinstance(justification, str) else None,
        requested_until=_when_text(asked.get("requested_until")) or None,
        emergency=asked.get("emergency") is True,
        items=tuple(items),
        why=tuple(
            (name, str((about or {}).get("description") or "")) for name, about in templates.items()
        ),
        source=source_lines(body.get("client")),
    )


def form_fields(form: Any) -> tuple[tuple[str, str], ...]:
    """A request form's fields as lines: its title, and the value given in words (a catalog
    item's label beside its value); "(not given)" for a required field left out."""
    lines = []
    for field in (form or {}).get("fields") or []:
        if "value" not in field:
            shown = "(not given)"
        elif isinstance(field["value"], str):
            shown = field["value"]
        else:
            shown = json.dumps(field["value"], ensure_ascii=False)
        if isinstance(field.get("label"), str):
            shown = f"{field['label']} ({shown})"
        lines.append((str(field.get("title") or field.get("name") or ""), shown))
    return tuple(lines)


_SOURCE = {"session_id": "Session", "external_url": "Link", "integration_id": "Integration"}


def source_lines(client: Any) -> tuple[tuple[str, str], ...]:
    """Where the request came from (the Actor profile's `client.source`): for the record."""
    source = client.get("source") if isinstance(client, dict) else None
    if not isinstance(source, dict):
        return ()
    return tuple((words, str(source[name])) for name, words in _SOURCE.items() if name in source)


def act_chain(subject: Mapping[str, Any], client: Any, context: Mapping[str, Any]) -> list[str]:
    """Who the request came through: each actor of `subject.properties.act` (the client
    acting for the person, the agent acting for that client, ...), each of the verified
    `client.actor` chain not named already, then the client named by the submission or the
    context when the chain does not already name it."""
    chain: list[str] = []
    properties = subject.get("properties")
    act = properties.get("act") if isinstance(properties, dict) else None
    for _ in range(16):
        if not isinstance(act, dict):
            break
        if isinstance(act.get("sub"), str):
            chain.append(act["sub"])
        act = act.get("act")
    chain += [link for link in chain_ids(client) if link not in chain]
    named = None
    if isinstance(client, dict):
        named = client.get("id") or client.get("client_id")
    named = named or context.get("client_id")
    if isinstance(named, str) and named not in chain:
        chain.append(named)
    return chain


def who(actor: str | None) -> str:
    """An audit actor in words: an approver's or person's name, or what acted."""
    if actor is None:
        return "someone"
    if actor.startswith("["):
        try:
            _issuer, _type, sub = json.loads(actor)
            return str(sub)
        except (ValueError, TypeError):
            return actor
    if actor.startswith("person:"):
        try:
            return str(json.loads(actor.removeprefix("person:"))[1])
        except (ValueError, TypeError, IndexError):
            return actor
    return {"system": "the bridge", "policy": "the policy", "operator": "an operator"}.get(
        actor, actor
    )


_EVENTS = {
    "filed": "Asked by {actor}",
    "notified": "Told {recipient} ({channel})",
    "step_approved": "Step “{step}” approved by {actor}",
    "approved": "Approved by {actor}",
    "denied": "Denied by {actor} at step “{step}”",
    "cancelled": "Cancelled by {actor}",
    "expired": "Expired: nobody decided in time",
    "escalated": "Step “{step}” escalated: it waited too long",
    "emergency_approved": "Approved at once by the policy (emergency)",
    "reviewed": "Emergency approval reviewed by {actor}",
    "revoked": "Approval revoked by {actor}",
    "reevaluated": "Decided again with the approval: {decision}",
}


def my_request(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A person's own request (the service's requester view) with its times in words."""
    items = [
        {**item, "approved_until": _when_text(item["approved_until"])}
        if item.get("approved_until")
        else item
        for item in entry.get("items") or []
    ]
    return {**entry, "items": items, "created": when(entry.get("created_at"))}


@dataclass(frozen=True)
class HistoryLine:
    time: str
    text: str
    justification: str | None


def history(entries: Sequence[AuditEntry]) -> list[HistoryLine]:
    lines = []
    for entry in entries:
        data = entry.data if isinstance(entry.data, dict) else {}
        pattern = _EVENTS.get(entry.event, entry.event)
        text = pattern.format(
            actor=who(entry.actor),
            recipient=who(str(data.get("recipient", ""))),
            channel=data.get("channel", ""),
            step=data.get("step", ""),
            decision="allowed" if data.get("decision") else "not allowed",
        )
        note = data.get("justification") or data.get("reason")
        lines.append(HistoryLine(when(entry.at), text, note if isinstance(note, str) else None))
    return lines


@dataclass(frozen=True)
class GrantedView:
    id: str
    task_id: str
    what: str
    approved_at: str
    approved_until: str


def granted_view(approval: ApprovalRecord) -> GrantedView:
    binding = approval.binding if isinstance(approval.binding, dict) else {}
    subject = binding.get("subject") or {}
    resource = binding.get("resource") or {}
    action = (binding.get("action") or {}).get("name", "")
    return GrantedView(
        id=approval.id,
        task_id=approval.task_id,
        what=(
            f"{action} {resource.get('type', '')} {resource.get('id', '')} "
            f"for {subject.get('type', '')} {subject.get('id', '')}"
        ).strip(),
        approved_at=when(approval.approved_at),
        approved_until=when(approval.approved_until),
    )
