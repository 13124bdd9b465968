"""The call into Cedar, and reading its answer, at the cost of a decision and little more.

cedarpy's public `is_authorized_batch` parses every answer's JSON text with `json.loads` and
wraps it in result objects: about a quarter of a decision's cost for a plain permit. Here the
extension's own call (`cedarpy._internal`, whose signature cedarpy's stubs publish) hands back
the texts, and the two answers most decisions give are recognised by how they begin:

- `{"decision":"Allow",...`: a permit;
- `{"decision":"Deny","correlation_id":null,"diagnostics":{"reason":[],...`: a denial no
  policy determined (no `@approval` can make it requestable).

Every other answer (a denial with determining policies, no decision, or anything phrased
otherwise by another cedarpy release) is parsed in full. With explanations on, every answer
is parsed: the determining policies and errors are the point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cedarpy
from cedarpy import _internal

from ...jose.json_text import loads_trusted
from ..models import Decision, JSONObject

_ALLOW = '{"decision":"Allow"'
_UNDETERMINED_DENY = '{"decision":"Deny","correlation_id":null,"diagnostics":{"reason":[],'
# Decisions are frozen: the plain ones can be shared.
_PERMIT = Decision(True)
_DENY = Decision(False)

# The approval template of a denial determined by these policies (`PolicyStore.approval_template`).
TemplateOf = Callable[[list[str]], "str | None"]


def authorize(
    requests: Sequence[dict[str, Any]],
    policy_set: cedarpy.PolicySet,
    entities: cedarpy.Entities | str,
) -> list[str]:
    """Cedar's answer to each request, as the extension writes it (JSON text). A request's
    `context` must already be JSON text."""
    handle = entities._inner if isinstance(entities, cedarpy.Entities) else entities
    return _internal.is_authorized_batch(list(requests), policy_set, handle, None, False)


def outcome(answer: str, template_of: TemplateOf, *, explanations: bool) -> Decision | str:
    """The Decision in Cedar's `answer`, or the engine's reason for none."""
    if not explanations:
        if answer.startswith(_ALLOW):
            return _PERMIT
        if answer.startswith(_UNDETERMINED_DENY):
            return _DENY
    result = loads_trusted(answer)
    diagnostics = result.get("diagnostics") or {}
    errors: list[str] = diagnostics.get("errors") or []
    reasons: list[str] = diagnostics.get("reason") or []
    if result["decision"] not in ("Allow", "Deny"):
        return "the policy engine reached no decision" + (f": {errors[0]}" if errors else "")
    allowed = result["decision"] == "Allow"
    requestable = None if allowed else template_of(reasons)
    if not explanations:
        return Decision(allowed, requestable=requestable)
    context: JSONObject = {"determining_policies": sorted(reasons)}
    if errors:
        context["evaluation_errors"] = list(errors)
    return Decision(allowed, context, requestable=requestable)
