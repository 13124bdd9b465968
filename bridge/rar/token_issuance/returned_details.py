"""`authorization_details` a PDP returns in `context.issuance` (token issuance profile
§6.4.4): they replace the reassembled entries, but only if they are narrower, and
"narrower" is not decidable for an arbitrary type, so the profile fixes a check:

- every returned entry is covered by one entry of the request (never by several taken
  together, which could name a permission nobody asked for): the same `type`, and each of
  `locations`, `actions`, `datatypes` (and `privileges`) a subset of the request entry's;
- a member the request entry lacks constrains nothing, so the PDP may add one (that is
  narrowing), except `locations`, which must then be among the requested targets;
- a member the request entry has may not be dropped (dropping it would lift the limit),
  and members beyond RFC 9396's must equal the request's or, new, pass the type's own
  validator (its profile's JSON Schema): nothing unvalidated reaches a token.

What survives is then intersected with the cells the PDP permitted (§6.5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

from ..profiles import ProfileSet
from .narrowing import Cell, reassemble

SUBSET_MEMBERS = ("locations", "actions", "datatypes", "privileges")


def check_returned_details(
    returned: Sequence[Any],
    requested: Sequence[dict[str, Any]],
    targets: Sequence[str],
    cells: Mapping[int, frozenset[Cell]],
    profiles: ProfileSet,
) -> list[dict[str, Any]] | None:
    """The returned entries, each cut down to the permitted cells of the request entry
    covering it; None when one of them is not narrower (the decision is then rejected).
    `targets` are what an entry without `locations` was asked at."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in returned:
        key = json.dumps(entry, sort_keys=True) if isinstance(entry, dict) else ""
        if key in seen:
            continue  # the same entry from two items is one entry (the union, §6.5)
        seen.add(key)
        if not _valid(entry, profiles):
            return None
        covering = next(
            (index for index, asked in enumerate(requested) if _covers(asked, entry, targets)),
            None,
        )
        if covering is None:
            return None
        asked = requested[covering]
        kept = frozenset(
            cell
            for cell in _cells(entry)
            if _as_asked(asked, cell) in cells.get(covering, frozenset())
        )
        out.extend(reassemble(entry, kept))
    return out


def _valid(entry: Any, profiles: ProfileSet) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        return False
    profile = profiles.get(entry["type"])
    if profile is None:
        return False
    for member in SUBSET_MEMBERS:
        value = entry.get(member)
        if member in entry and not (
            isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
        ):
            return False
    return profile.validator.is_valid(entry)


def _covers(asked: dict[str, Any], entry: dict[str, Any], targets: Sequence[str]) -> bool:
    if asked["type"] != entry["type"]:
        return False
    for member, value in asked.items():
        if member not in entry:
            return False  # dropping a member the request has would lift its limit
        if member in SUBSET_MEMBERS:
            if not set(entry[member]) <= set(value):
                return False
        elif _canonical(entry[member]) != _canonical(value):
            return False
    # A location the request entry did not name must be a requested target (§6.4.4).
    return "locations" in asked or set(entry.get("locations", [])) <= set(targets)


def _cells(entry: dict[str, Any]) -> list[Cell]:
    datatypes = entry.get("datatypes")
    if not datatypes or any(":" in d for d in datatypes):
        datatypes = [None]
    return list(
        product(
            list(dict.fromkeys(entry.get("locations") or [None])),
            list(dict.fromkeys(entry.get("actions") or [None])),
            list(dict.fromkeys(datatypes)),
        )
    )


def _as_asked(asked: dict[str, Any], cell: Cell) -> Cell:
    """A returned cell in the axes of the request entry (None where the request had no such
    axis: any value the PDP supplies there narrows it)."""
    location, action, datatype = cell
    decomposed = bool(asked.get("datatypes")) and not any(":" in d for d in asked["datatypes"])
    return (
        location if "locations" in asked else None,
        action if "actions" in asked else None,
        datatype if decomposed else None,
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
