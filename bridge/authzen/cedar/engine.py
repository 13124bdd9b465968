"""The embedded PDP: AuthZEN requests decided by Cedar over a store's current snapshot.

Mapping (documented for authors in docs/policy-authoring.md):
principal = `<subject.type>::"<subject.id>"`, action = `Action::"<action.name>"`,
resource = `<resource.type>::"<resource.id>"`; entity attributes are the stored ones overlaid
with the request's `properties`; the request `context` is the Cedar context, plus the member
`action_properties` holding `action.properties` (Cedar actions carry no request attributes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cedarpy

from ...jose.json_text import dumps_str
from ..batch import truncate
from ..errors import EngineError
from ..models import (
    Action,
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    JSONObject,
    ResourceSearchRequest,
    SearchResult,
    SubjectSearchRequest,
)
from ..pagination import Paginator
from .calls import authorize, outcome
from .entities import EntityGraph, Record
from .index import Candidates, IndexKey
from .names import ACTION_TYPE, EntityUid, cedar_record, cedar_type
from .reload import StoreHolder
from .store import PolicyStore

ACTION_PROPERTIES = "action_properties"

_T = TypeVar("_T")

# Above this many Cedar requests a call leaves the event loop for a worker thread.
_THREAD_THRESHOLD = 256


@dataclass(slots=True)
class _Item:
    key: IndexKey
    request: dict[str, Any]
    uids: tuple[EntityUid, EntityUid, EntityUid]  # principal, action, resource
    overlays: dict[EntityUid, Record] = field(default_factory=dict)


class CedarPDP:
    def __init__(self, holder: StoreHolder, paginator: Paginator, *, explanations: bool) -> None:
        self.holder = holder
        self.paginator = paginator
        self.explanations = explanations

    def policy_version(self) -> str:
        """The digest of the store files deciding now (`PolicyStore.version`)."""
        return self.holder.current.version

    # -- PDP interface -------------------------------------------------------------------

    async def evaluate(self, request: EvaluationRequest) -> Decision:
        store = self.holder.current
        outcome = self._decide(store, [_from_request(store, request)])[0]
        if isinstance(outcome, str):
            raise EngineError(outcome)
        return outcome

    async def evaluations(
        self,
        requests: Sequence[EvaluationRequest],
        semantic: EvaluationsSemantic = EvaluationsSemantic.execute_all,
    ) -> list[Decision]:
        store = self.holder.current

        def work() -> list[Decision]:
            items = [_from_request(store, r) for r in requests]
            return [
                Decision.failed(500, o) if isinstance(o, str) else o
                for o in self._decide(store, items)
            ]

        # Cedar decides the whole batch in one call; short-circuiting only trims the answer.
        return truncate(await self._run(len(requests), work), semantic)

    async def search_subject(self, request: SubjectSearchRequest) -> SearchResult:
        fixed = (request.resource.type, request.resource.id, request.resource.properties)
        results = await self._search_entities(
            request.subject.type, fixed, request.action, request.context, searched_is="principal"
        )
        return self.paginator.page(f"{self.holder.current.name}/search/subject", request, results)

    async def search_resource(self, request: ResourceSearchRequest) -> SearchResult:
        fixed = (request.subject.type, request.subject.id, request.subject.properties)
        results = await self._search_entities(
            request.resource.type, fixed, request.action, request.context, searched_is="resource"
        )
        return self.paginator.page(f"{self.holder.current.name}/search/resource", request, results)

    async def _search_entities(
        self,
        searched: str,
        fixed: tuple[str, str, JSONObject | None],
        action: Action,
        context: JSONObject | None,
        *,
        searched_is: str,
    ) -> list[JSONObject]:
        """Every stored entity of type `searched` that, as principal (or resource) beside the
        fixed entity, is permitted `action`. An unknown fixed entity has no results."""
        store = self.holder.current
        other = (cedar_type(fixed[0]), fixed[1])
        candidates = store.entities.ids_of_type(cedar_type(searched))
        if other not in store.entities:
            candidates = []
        context_text = _context(context, action.properties)
        overlays = _overlays(store.entities, [(other, fixed[2])])

        def item(cid: str) -> _Item:
            found = (cedar_type(searched), cid)
            principal, resource = (found, other) if searched_is == "principal" else (other, found)
            return _item(store, principal, action.name, resource, context_text, overlays)

        def work() -> list[JSONObject]:
            outcomes = self._decide(store, [item(cid) for cid in candidates])
            return [
                {"type": searched, "id": cid}
                for cid, outcome in zip(candidates, outcomes, strict=True)
                if _permitted(outcome)
            ]

        return await self._run(len(candidates), work)

    async def search_action(self, request: ActionSearchRequest) -> SearchResult:
        store = self.holder.current
        principal = (cedar_type(request.subject.type), request.subject.id)
        resource = (cedar_type(request.resource.type), request.resource.id)
        known = principal in store.entities and resource in store.entities
        candidates = store.actions if known else []
        context = _context(request.context, None)
        overlays = _overlays(
            store.entities,
            [(principal, request.subject.properties), (resource, request.resource.properties)],
        )
        items = [_item(store, principal, name, resource, context, overlays) for name in candidates]
        outcomes = self._decide(store, items)
        results: list[JSONObject] = [
            {"name": name}
            for name, outcome in zip(candidates, outcomes, strict=True)
            if _permitted(outcome)
        ]
        return self.paginator.page(f"{store.name}/search/action", request, results)

    # -- deciding ------------------------------------------------------------------------

    async def _run(self, size: int, work: Callable[[], _T]) -> _T:
        if size > _THREAD_THRESHOLD:
            return await asyncio.to_thread(work)
        return work()

    def _decide(self, store: PolicyStore, items: list[_Item]) -> list[Decision | str]:
        """One outcome per item, in order: a Decision, or the engine's reason for none."""
        explanations = self.explanations
        if len(items) == 1 and not items[0].overlays:
            # The common single decision: no grouping, the store's pre-parsed entities.
            chosen = store.index.policy_set(items[0].key)
            [answer] = authorize(
                [_as_read(items[0].request, chosen)], chosen.policy_set, store.entities.handle
            )
            return [outcome(answer, store.approval_template, explanations=explanations)]
        outcomes: list[Decision | str] = [""] * len(items)
        groups: dict[IndexKey, list[int]] = {}
        for n, item in enumerate(items):
            groups.setdefault(item.key, []).append(n)
        for key, members in groups.items():
            chosen = store.index.policy_set(key)
            for chunk, entities in _calls(
                store.entities, [items[n] for n in members], chosen.named
            ):
                answers = authorize(
                    [_as_read(items[members[i]].request, chosen) for i in chunk],
                    chosen.policy_set,
                    entities,
                )
                for i, answer in zip(chunk, answers, strict=True):
                    outcomes[members[i]] = outcome(
                        answer, store.approval_template, explanations=explanations
                    )
        return outcomes


def _as_read(request: dict[str, Any], chosen: Candidates) -> dict[str, Any]:
    """The request as Cedar needs it for `chosen`: without its context where no candidate
    reads `context` (Cedar would parse it for nothing)."""
    if chosen.reads_context:
        return request
    return {name: value for name, value in request.items() if name != "context"}


def _permitted(outcome: Decision | str) -> bool:
    return isinstance(outcome, Decision) and outcome.decision


def _context(context: JSONObject | None, action_properties: JSONObject | None) -> str:
    """The Cedar context as JSON text: serialised once, however many requests share it."""
    record = cedar_record(context) if context else {}
    record[ACTION_PROPERTIES] = cedar_record(action_properties) if action_properties else {}
    return dumps_str(record)


def _from_request(store: PolicyStore, request: EvaluationRequest) -> _Item:
    principal = (cedar_type(request.subject.type), request.subject.id)
    resource = (cedar_type(request.resource.type), request.resource.id)
    overlays = _overlays(
        store.entities,
        [(principal, request.subject.properties), (resource, request.resource.properties)],
    )
    context = _context(request.context, request.action.properties)
    return _item(store, principal, request.action.name, resource, context, overlays)


def _item(
    store: PolicyStore,
    principal: EntityUid,
    action: str,
    resource: EntityUid,
    context: str,
    overlays: dict[EntityUid, Record],
) -> _Item:
    return _Item(
        key=store.index.key(principal[0], action, resource[0]),
        request={
            "principal": {"type": principal[0], "id": principal[1]},
            "action": {"type": ACTION_TYPE, "id": action},
            "resource": {"type": resource[0], "id": resource[1]},
            "context": context,
        },
        uids=(principal, (ACTION_TYPE, action), resource),
        overlays=overlays,
    )


def _overlays(
    graph: EntityGraph, entries: list[tuple[EntityUid, JSONObject | None]]
) -> dict[EntityUid, Record]:
    """Entities whose request properties change (or add) what the store holds."""
    out: dict[EntityUid, Record] = {}
    for uid, properties in entries:
        if not properties:
            continue
        attrs = cedar_record(properties)
        base = out.get(uid) or graph.get(uid)
        if base is None:
            if attrs:
                out[uid] = {"uid": {"type": uid[0], "id": uid[1]}, "attrs": attrs, "parents": []}
            continue
        merged = {**base["attrs"], **attrs}
        if merged != base["attrs"]:
            out[uid] = {"uid": base["uid"], "attrs": merged, "parents": base["parents"]}
    return out


def _calls(
    graph: EntityGraph, items: list[_Item], named: frozenset[EntityUid]
) -> list[tuple[list[int], cedarpy.Entities | str]]:
    """Split items into Cedar calls, each with the entities its requests need.

    Items that change no entity share the store's pre-parsed handle. Otherwise a call gets
    a slice (or, in a small store, the handle with the overlays added:
    `EntityGraph.entities_for`), and items share a call only when every entity they can reach
    looks the same to all of them: an item that overlays an entity never shares with one
    that reaches the stored (or a differently overlaid) version of it.
    """
    if not any(item.overlays for item in items):
        return [(list(range(len(items))), graph.handle)]
    named_slice: set[EntityUid] = set()
    for uid in named:
        named_slice |= graph.slice(uid)
    calls: list[tuple[list[int], cedarpy.Entities | str]] = []
    chunk: list[int] = []
    overlays: dict[EntityUid, Record] = {}
    used: set[EntityUid] = set()
    for n, item in enumerate(items):
        reach = set(named_slice).union(item.uids)
        for uid in item.uids:
            reach |= graph.slice(uid)
        if any(overlays.get(uid) != item.overlays.get(uid) for uid in used & reach):
            calls.append((chunk, graph.entities_for(used, overlays)))
            chunk, overlays, used = [], {}, set()
        chunk.append(n)
        overlays.update(item.overlays)
        used |= reach
    calls.append((chunk, graph.entities_for(used, overlays)))
    return calls
