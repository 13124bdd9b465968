"""A store's entities: the parsed Cedar handle plus what the bridge needs to slice it.

Three ways to give Cedar its entities for a request:
- the whole store's pre-parsed handle, when the request adds nothing to it (the fast path);
- a small slice, when request `properties` change or add an entity: the entities reachable
  from the request's principal, action and resource (through parents and entity-valued
  attributes) and those the candidate policies name, serialised from cached fragments. Its
  cost does not grow with the size of the store, unlike cloning the handle to add a delta;
- in a small store (`SMALL_STORE` entities at most), when the request only adds entities:
  the handle cloned with them added, which costs Cedar less than parsing a slice while the
  store is that small.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import cedarpy

from ...jose.json_text import dumps_str
from .names import ACTION_TYPE, EntityUid

Record = dict[str, Any]

# Up to this many stored entities (the schema's actions included), a request that adds
# entities gets a copy of the store's handle with them added, rather than a slice.
SMALL_STORE = 32


class EntityGraph:
    def __init__(self, handle: cedarpy.Entities) -> None:
        self.handle = handle
        # Cedar's own rendering: entity references are explicit `__entity` objects, and the
        # schema's action entities (with their groups) are included.
        records: list[Record] = json.loads(str(handle))
        self._records: dict[EntityUid, Record] = {_uid(r["uid"]): r for r in records}
        by_type: dict[str, list[str]] = {}
        for etype, eid in self._records:
            by_type.setdefault(etype, []).append(eid)
        self._by_type = {t: sorted(ids) for t, ids in by_type.items()}
        self._fragments: dict[EntityUid, str] = {}
        self._slices: dict[EntityUid, frozenset[EntityUid]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, uid: EntityUid) -> Record | None:
        return self._records.get(uid)

    def __contains__(self, uid: object) -> bool:
        return uid in self._records

    def ids_of_type(self, etype: str) -> list[str]:
        return self._by_type.get(etype, [])

    def parents(self, uid: EntityUid) -> list[EntityUid]:
        record = self._records.get(uid)
        return [] if record is None else [_uid(p) for p in record["parents"]]

    def action_ancestors(self, action: str) -> frozenset[str]:
        """Every action group `action` is in, directly or not."""
        seen: set[EntityUid] = set()
        todo = self.parents((ACTION_TYPE, action))
        while todo:
            uid = todo.pop()
            if uid not in seen:
                seen.add(uid)
                todo.extend(self.parents(uid))
        return frozenset(eid for etype, eid in seen if etype == ACTION_TYPE)

    def action_descendants(self, groups: frozenset[str]) -> frozenset[str]:
        """Every action that is in one of `groups`, directly or not."""
        return frozenset(
            a for a in self.ids_of_type(ACTION_TYPE) if self.action_ancestors(a) & groups
        )

    def fragment(self, uid: EntityUid) -> str:
        cached = self._fragments.get(uid)
        if cached is None:
            cached = self._fragments[uid] = dumps_str(self._records[uid])
        return cached

    def slice(self, uid: EntityUid) -> frozenset[EntityUid]:
        """The stored entities reachable from `uid` (itself included when stored)."""
        cached = self._slices.get(uid)
        if cached is not None:
            return cached
        seen: set[EntityUid] = set()
        todo = [uid]
        while todo:
            current = todo.pop()
            if current in seen or current not in self._records:
                continue
            seen.add(current)
            record = self._records[current]
            todo.extend(_uid(p) for p in record["parents"])
            todo.extend(_references(record.get("attrs", {})))
        result = self._slices[uid] = frozenset(seen)
        return result

    def entities_for(
        self, uids: Iterable[EntityUid], overlays: dict[EntityUid, Record]
    ) -> cedarpy.Entities | str:
        """What a call whose requests reach `uids` is decided against: `serialise`'s slice;
        or, when the store is small and the overlays only add entities, a copy of the
        pre-parsed handle with them added. Parsing even a two-entity slice costs Cedar about
        17 µs more than deciding on a handle; the copy costs about 9 µs at 10 entities, 35 µs
        at 100 and 390 µs at 1,000 (2 cores, 2026-12-07), hence the bound."""
        if len(self._records) <= SMALL_STORE and not any(uid in self._records for uid in overlays):
            delta = "[" + ",".join(dumps_str(record) for record in overlays.values()) + "]"
            return self.handle.with_added_json_str(delta)
        return self.serialise(uids, overlays)

    def serialise(self, uids: Iterable[EntityUid], overlays: dict[EntityUid, Record]) -> str:
        """A Cedar entities document: the overlays, and the stored form of the other `uids`."""
        parts = [dumps_str(record) for record in overlays.values()]
        parts.extend(
            self.fragment(uid) for uid in uids if uid not in overlays and uid in self._records
        )
        return "[" + ",".join(parts) + "]"


def _uid(raw: dict[str, str]) -> EntityUid:
    return (raw["type"], raw["id"])


def _references(value: Any) -> Iterable[EntityUid]:
    if isinstance(value, dict):
        ref = value.get("__entity")
        if isinstance(ref, dict):
            yield _uid(ref)
            return
        for member in value.values():
            yield from _references(member)
    elif isinstance(value, list):
        for element in value:
            yield from _references(element)
