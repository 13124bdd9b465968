"""ARAP `binding_hash` (ARAP §5): what a requestable denial is bound to, as one digest.

The hash covers the subject without its actor (`subject.properties.act`), the full resource
and action, and only the authorization-relevant context members named by the denial: the
values that must be the same when the access request is submitted and when the approval is
used again. JCS (RFC 8785) makes equal JSON values hash equally whatever their spelling
(`1e16` and `10000000000000000`), which `json.dumps(sort_keys=True)` does not.

The same digest decides approval scope: an approval applies to an evaluation exactly when
the evaluation's binding hash equals the approved item's (ARAP §11, default exact scope).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import rfc8785

from ..authzen.models import EvaluationRequest, JSONObject

# Decision-context members of ARAP itself; never part of authorization-relevant context (§4).
ARAP_MACHINERY = frozenset(
    {"access_request", "evaluation_id", "evaluated_at", "reason", "approval"}
)

CanonicalizationError = rfc8785.CanonicalizationError


def bound_subject(subject: JSONObject) -> JSONObject:
    """The subject as bound: `properties.act` removed (an empty `properties` stays `{}`)."""
    out = copy.deepcopy(subject)
    properties = out.get("properties")
    if isinstance(properties, dict):
        properties.pop("act", None)
    return out


def bound_context(context: JSONObject | None, members: Iterable[str]) -> JSONObject:
    """Only the named members that are present; a member present as `null` is kept."""
    context = context or {}
    return {name: context[name] for name in members if name in context}


def relevant_members(configured: Iterable[str]) -> list[str]:
    """The configured authorization-relevant members, without ARAP's own (ARAP §4)."""
    return [name for name in dict.fromkeys(configured) if name not in ARAP_MACHINERY]


def digest(value: Any) -> str:
    """base64url (no padding) of SHA-256 over the JCS form of `value`.

    Raises `CanonicalizationError` for values JCS cannot represent (integers beyond 2^53).
    """
    data = rfc8785.dumps(value)
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def binding_hash(
    subject: JSONObject,
    resource: JSONObject,
    action: JSONObject,
    context: JSONObject | None,
    members: Sequence[str],
) -> str:
    """The single-item binding hash of ARAP §5."""
    return digest(
        {
            "subject": bound_subject(subject),
            "resource": resource,
            "action": action,
            "context": bound_context(context, members),
        }
    )


def bundle_binding_hash(
    subject: JSONObject,
    items: Sequence[tuple[JSONObject, JSONObject]],
    context: JSONObject | None,
    members: Sequence[str],
) -> str:
    """The bundle form: `items` are (resource, action) pairs in the order the denial bound."""
    return digest(
        {
            "subject": bound_subject(subject),
            "items": [{"resource": r, "action": a} for r, a in items],
            "context": bound_context(context, members),
        }
    )


def entity_json(model: Any) -> JSONObject:
    """An AuthZEN subject, resource or action model as the JSON it stands for: `properties`
    only when present (a `null` one was already read as absent), unknown members dropped."""
    out: JSONObject = model.model_dump(exclude={"properties"})
    if model.properties is not None:
        out["properties"] = model.properties
    return out


def request_binding_hash(request: EvaluationRequest, members: Sequence[str]) -> str:
    """The binding hash of an evaluation as the PDP saw it."""
    return binding_hash(
        entity_json(request.subject),
        entity_json(request.resource),
        entity_json(request.action),
        request.context,
        members,
    )
