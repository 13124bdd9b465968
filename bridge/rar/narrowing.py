"""Whether requested `authorization_details` stay within what was granted (refresh, exchange).

RFC 9396 leaves "less than before" to each type; the bridge uses one conservative rule for
every type: a requested entry is covered by a granted entry of the same type when each of
its common array fields (`actions`, `locations`, `datatypes`, `privileges`) is a subset of
that entry's, and every other member is equal. A member present on one side only never
counts as covered, because an absent field may mean "all" for some types. Values are
compared as JSON values (`true` is not `1`, `10` is `10.0`), not with Python's equality.
"""

from __future__ import annotations

import json
from typing import Any

SUBSET_FIELDS = ("actions", "locations", "datatypes", "privileges")


def is_narrowing(requested: list[dict[str, Any]], granted: list[dict[str, Any]]) -> bool:
    """True when every requested entry is covered by some granted entry."""
    return all(any(_covers(g, r) for g in granted) for r in requested)


def _covers(granted: dict[str, Any], requested: dict[str, Any]) -> bool:
    if set(granted) != set(requested):
        return False
    for name, value in requested.items():
        allowed = granted[name]
        if name in SUBSET_FIELDS:
            if not (isinstance(value, list) and isinstance(allowed, list)):
                return False
            if not {_canonical(v) for v in value} <= {_canonical(v) for v in allowed}:
                return False
        elif _canonical(value) != _canonical(allowed):
            return False
    return True


def _canonical(value: Any) -> str:
    return json.dumps(_same_numbers(value), sort_keys=True, separators=(",", ":"))


def _same_numbers(value: Any) -> Any:
    """10 and 10.0 are one JSON number; `true` stays a boolean, never the number 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_numbers(v) for v in value]
    return value
