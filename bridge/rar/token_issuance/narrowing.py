"""What the decisions leave of a token request (token issuance profile §5.5.4 to §5.5.6).

- A denied gate removes its target: the token does not name it, and the scope tuples and
  cells asked at it are disregarded. (An `audience: []` the PDP returns withdraws a target
  the same way, §6.4.3: the caller passes those in `withdrawn`.)
- A scope survives only where it was permitted at every surviving target, since a token
  naming two audiences cannot say which of them a scope was granted for (RFC 9068 §2.2.3).
  In a two-level evaluation every level-2 resource counts too (binding §4.4.1).
- A denied cell narrows its entry: the permitted cells are reassembled into entries of the
  same type, several where they do not form one product (RFC 9396 Figure 6), never one
  wider entry. An entry without `locations` was asked at every target, and keeps a cell
  only where every surviving target permitted it.

The caller turns what is left into errors: no target, no scope, no entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..translate import PlannedEvaluation

# One cell of an entry: (location, action, datatype). None where the entry has no such
# member (a location then stands for every target; an action or a datatype for none).
Cell = tuple[str | None, str | None, str | None]
_Axis = tuple[str | None, ...]
_Shape = tuple[tuple[_Axis, _Axis], ...]  # (actions, datatypes) rectangles of one location


@dataclass(frozen=True)
class Narrowed:
    targets: list[str]
    scopes: list[str]
    details: list[dict[str, Any]]
    # The permitted cells of each entry, by index (what PDP-returned entries may keep).
    cells: dict[int, frozenset[Cell]] = field(default_factory=dict)
    # A gate was denied (the token exchange binding fails the request on any, §4.6).
    gate_denied: bool = False
    # A level-1 tuple of a two-level evaluation was denied: fatal (binding §4.4.1).
    level_one_denied: bool = False
    # Per planned item: asked where the token still reaches (else it is disregarded, and
    # so is what its context says, §5.5.4).
    reaching: tuple[bool, ...] = ()


def narrow(
    entries: Sequence[dict[str, Any]],
    scopes: Sequence[str],
    planned: Sequence[PlannedEvaluation],
    permitted: Sequence[bool],
    withdrawn: frozenset[str] = frozenset(),
    *,
    two_level: bool = False,
) -> Narrowed:
    """`planned` is `tuples.form_batch`'s plan of `entries` and `scopes`; `permitted[n]`
    the decision on `planned[n]` as the caller reads it (a permit the PDP capped at a
    lifetime of 0 is a denial, §6.4.2); `withdrawn` the targets the PDP withheld;
    `two_level` whether the question was (`IssuanceQuestion.two_level`), level 2 or not."""
    items = list(zip(planned, permitted, strict=True))
    removed = set(withdrawn)
    gate_denied = False
    for item, ok in items:
        if item.source == "gate" and not ok:
            removed.add(item.target or "")
            gate_denied = True
    targets = [t for t in targets_of(planned) if t not in removed]
    level_one_denied = two_level and any(not ok and item.level == 1 for item, ok in items)

    def counts(item: PlannedEvaluation) -> bool:
        """Asked where the token still reaches (level 2 is never removed, only narrowed)."""
        return item.level == 2 or not any(at_target(item.target or "", t) for t in removed)

    def scope_survives(value: str) -> bool:
        asked = [(item, ok) for item, ok in items if item.source == "scope"]
        return all(ok for item, ok in asked if item.scope == value and counts(item))

    surviving_scopes = [value for value in scopes if scope_survives(value)]
    details: list[dict[str, Any]] = []
    cells: dict[int, frozenset[Cell]] = {}
    for index, entry in enumerate(entries):
        asked = [(item, ok) for item, ok in items if item.entry_index == index and counts(item)]
        kept = _permitted_cells(entry, asked)
        cells[index] = kept
        details.extend(reassemble(entry, kept))
    return Narrowed(
        targets,
        surviving_scopes,
        details,
        cells,
        gate_denied,
        level_one_denied,
        tuple(counts(item) for item in planned),
    )


def targets_of(planned: Sequence[PlannedEvaluation]) -> list[str]:
    """The requested targets, in order: what the gates were asked at."""
    return list(dict.fromkeys(p.target or "" for p in planned if p.source == "gate"))


def cell_of(entry: dict[str, Any], item: PlannedEvaluation) -> Cell:
    """The cell `item` asks about, with None for an axis the entry does not have."""
    return (
        item.target if "locations" in entry else None,
        item.action if "actions" in entry else None,
        item.datatype,
    )


def _permitted_cells(
    entry: dict[str, Any], asked: list[tuple[PlannedEvaluation, bool]]
) -> frozenset[Cell]:
    """Cells permitted wherever they were asked; one denial (at any target, for an entry
    without `locations`) removes the cell."""
    verdicts: dict[Cell, bool] = {}
    for item, ok in asked:
        cell = cell_of(entry, item)
        verdicts[cell] = verdicts.get(cell, True) and ok
    return frozenset(cell for cell, ok in verdicts.items() if ok)


def reassemble(entry: dict[str, Any], cells: frozenset[Cell]) -> list[dict[str, Any]]:
    """`entry` narrowed to `cells`: itself when all survive, nothing when none do, else
    entries of the same type whose products are exactly the surviving cells."""
    if not cells:
        return []
    locations = _values(entry, "locations")
    actions = _values(entry, "actions")
    datatypes = _datatypes(entry)
    whole = {(loc, act, dt) for loc in locations for act in actions for dt in datatypes}
    if cells >= whole:
        return [entry]
    # Per location, its actions grouped by the datatypes they kept: its rectangles.
    grouped: dict[_Shape, list[str | None]] = {}
    for loc in locations:
        by_datatypes: dict[_Axis, list[str | None]] = {}
        for act in actions:
            kept = tuple(dt for dt in datatypes if (loc, act, dt) in cells)
            if kept:
                by_datatypes.setdefault(kept, []).append(act)
        if by_datatypes:
            # Locations with the same rectangles share entries.
            shape = tuple((tuple(acts), dts) for dts, acts in by_datatypes.items())
            grouped.setdefault(shape, []).append(loc)
    out = []
    for shape, locs in grouped.items():
        for acts, dts in shape:
            out.append(_entry(entry, locs, acts, dts))
    return out


def _entry(
    entry: dict[str, Any],
    locations: Sequence[str | None],
    actions: Sequence[str | None],
    datatypes: Sequence[str | None],
) -> dict[str, Any]:
    narrowed = dict(entry)
    if "locations" in entry:
        narrowed["locations"] = list(locations)
    if "actions" in entry:
        narrowed["actions"] = list(actions)
    if any(d is not None for d in datatypes):
        narrowed["datatypes"] = list(datatypes)
    return narrowed


def _values(entry: dict[str, Any], member: str) -> list[str | None]:
    if member not in entry:
        return [None]
    return list(dict.fromkeys(entry[member]))


def _datatypes(entry: dict[str, Any]) -> list[str | None]:
    """The datatype axis as the tuples decomposed it (none where a value holds a colon)."""
    values = entry.get("datatypes")
    if not values or any(":" in v for v in values):
        return [None]
    return list(dict.fromkeys(values))


def at_target(location: str, target: str) -> bool:
    """Whether a tuple at `location` is asked at `target`: the same URI, or a location at
    a target that is an origin (the bridge's default targets are the origins of the
    requested locations, as a token's `aud` has always been)."""
    if location == target:
        return True
    t = urlsplit(target)
    if t.path not in ("", "/") or t.query or not t.netloc:
        return False
    loc = urlsplit(location)
    return (loc.scheme.lower(), loc.netloc.lower()) == (t.scheme.lower(), t.netloc.lower())


__all__ = ["Cell", "Narrowed", "at_target", "cell_of", "narrow", "reassemble", "targets_of"]
