"""The AuthZEN information model (Authorization API 1.0 §5) and its request shapes.

Requests are validated with pydantic at the edge; decisions and search results are plain
dataclasses because they are built on the hot path and serialised by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

JSONObject = dict[str, Any]


class _Model(BaseModel):
    # Unknown members are ignored at every level: later revisions may only add members.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Subject(_Model):
    type: StrictStr
    id: StrictStr
    properties: JSONObject | None = None


class Resource(_Model):
    type: StrictStr
    id: StrictStr
    properties: JSONObject | None = None


class Action(_Model):
    name: StrictStr
    properties: JSONObject | None = None


class EvaluationRequest(_Model):
    subject: Subject
    action: Action
    resource: Resource
    context: JSONObject | None = None


class SearchedEntity(_Model):
    """The entity a search lists: only its `type` counts, an `id` is ignored."""

    type: StrictStr


class Page(_Model):
    token: StrictStr | None = None
    limit: StrictInt | None = Field(default=None, ge=0)
    properties: JSONObject | None = None


class SubjectSearchRequest(_Model):
    subject: SearchedEntity
    action: Action
    resource: Resource
    context: JSONObject | None = None
    page: Page | None = None


class ResourceSearchRequest(_Model):
    subject: Subject
    action: Action
    resource: SearchedEntity
    context: JSONObject | None = None
    page: Page | None = None


class ActionSearchRequest(_Model):
    subject: Subject
    resource: Resource
    context: JSONObject | None = None
    page: Page | None = None


SearchRequest = SubjectSearchRequest | ResourceSearchRequest | ActionSearchRequest


class EvaluationsSemantic(StrEnum):
    execute_all = "execute_all"
    deny_on_first_deny = "deny_on_first_deny"
    permit_on_first_permit = "permit_on_first_permit"


@dataclass(frozen=True, slots=True)
class Decision:
    decision: bool
    context: JSONObject | None = None
    # The embedded engine's finding that this denial can be requested, and with which
    # approval template; turned into ARAP's `context.access_request` before it leaves.
    requestable: str | None = field(default=None, compare=False)

    def to_json(self) -> JSONObject:
        # Batch items must be exactly {"decision": b} unless there is something to say.
        if self.context is None:
            return {"decision": self.decision}
        return {"decision": self.decision, "context": self.context}

    @staticmethod
    def failed(status: int, message: str) -> Decision:
        """A batch item that could not be evaluated: a deny that says why (API 1.0 §7.1.4)."""
        return Decision(False, {"error": {"status": status, "message": message}})


def requestable_denial(decision: Decision) -> bool:
    """ARAP §3: a denial whose `context.access_request` says how to ask for an approval."""
    return (
        not decision.decision
        and decision.context is not None
        and isinstance(decision.context.get("access_request"), dict)
    )


@dataclass(frozen=True, slots=True)
class SearchPage:
    next_token: str
    count: int
    total: int

    def to_json(self) -> JSONObject:
        return {"next_token": self.next_token, "count": self.count, "total": self.total}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Results are `{"type", "id"}` for subjects and resources, `{"name"}` for actions."""

    results: list[JSONObject]
    page: SearchPage | None = None
    context: JSONObject | None = field(default=None)

    def to_json(self) -> JSONObject:
        body: JSONObject = {}
        if self.page is not None:
            body["page"] = self.page.to_json()
        if self.context is not None:
            body["context"] = self.context
        body["results"] = self.results
        return body


_ENTITY_MEMBERS = ("subject", "action", "resource")


def drop_nulls(payload: JSONObject) -> JSONObject:
    """A null optional member counts as absent (a null required one then reads as missing)."""
    if None not in payload.values() and not any(
        isinstance(payload.get(key), dict) and None in payload[key].values()
        for key in (*_ENTITY_MEMBERS, "page")
    ):
        return payload
    out = {k: v for k, v in payload.items() if v is not None}
    for key in (*_ENTITY_MEMBERS, "page"):
        member = out.get(key)
        if isinstance(member, dict):
            out[key] = {k: v for k, v in member.items() if v is not None}
    return out


_TYPE_WORDS = {
    "string_type": "a string",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "int_type": "an integer",
    "greater_than_equal": "a non-negative integer",
}


def describe(error: ValidationError) -> str:
    """One readable sentence for the first problem pydantic found."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    kind = first["type"]
    if kind == "missing":
        return f"{where} is required"
    if kind in _TYPE_WORDS:
        return f"{where} must be {_TYPE_WORDS[kind]}"
    return f"{where}: {first['msg']}"
