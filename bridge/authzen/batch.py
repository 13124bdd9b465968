"""Access Evaluations (API 1.0 §7): default merging and short-circuit semantics.

Both the served endpoint and the remote client's emulation of a missing batch endpoint use
these, so the two behave alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from .models import Decision, EvaluationsSemantic, JSONObject

_MERGED = ("subject", "action", "resource", "context")


def merge_defaults(defaults: JSONObject, item: JSONObject) -> JSONObject:
    """One-level shallow merge per entity: item members win, nested objects are replaced.

    A complete entity in the item replaces the default entirely; a partial one inherits the
    members it lacks (e.g. a default `resource.type` with per-item ids).
    """
    merged: JSONObject = {}
    for key in _MERGED:
        top, own = defaults.get(key), item.get(key)
        if isinstance(top, dict) and isinstance(own, dict):
            merged[key] = {**top, **own}
        elif key in item:
            merged[key] = own
        elif key in defaults:
            merged[key] = top
    return merged


def stops_here(decision: Decision, semantic: EvaluationsSemantic) -> bool:
    """Whether this item ends the batch under the requested semantic (failed items deny)."""
    if semantic == EvaluationsSemantic.deny_on_first_deny:
        return not decision.decision
    if semantic == EvaluationsSemantic.permit_on_first_permit:
        return decision.decision
    return False


def truncate(decisions: Sequence[Decision], semantic: EvaluationsSemantic) -> list[Decision]:
    """Items up to and including the one that short-circuits; all of them when none does."""
    out: list[Decision] = []
    for decision in decisions:
        out.append(decision)
        if stops_here(decision, semantic):
            break
    return out
