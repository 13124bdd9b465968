"""The policy index: only policies whose scope can match a request are given to Cedar.

Cedar evaluates every policy of the set it is handed, so a store with many policies for
other actions and entity types would make every decision slower. Each policy's scope says
which principal types, actions and resource types it can apply to; a request's key
(principal type, action, resource type) selects the candidates, and the candidates' policy
set is parsed once per key and kept. Types and actions no policy names collapse into one
"other" key, so the number of kept sets is bounded by the store, not by what callers send.

A set none of whose policies reads `context` is decided without it: the only way to the
context is that variable, so the decision cannot depend on it, and Cedar parsing a
request's context costs about a third of a plain decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

import cedarpy
from cedarpy import pst

from .names import ACTION_TYPE, EntityUid

_OTHER = "\x00other"

IndexKey = tuple[str, str, str]


@dataclass(frozen=True)
class PolicyRecord:
    """One static policy of a store and where it came from."""

    policy_id: str  # its `@id`, or `<file>#<n>` when it has none
    file: str
    line: int | None
    template: pst.Template = field(repr=False)

    @property
    def effect(self) -> str:
        return str(self.template.effect)

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.template.annotations)


@dataclass(frozen=True, slots=True)
class _Scope:
    principal_types: frozenset[str] | None  # None: any type
    actions: frozenset[str] | None
    resource_types: frozenset[str] | None


def _entity_types(constraint: pst.PrincipalOrResourceConstraint) -> frozenset[str] | None:
    match constraint:
        case pst.ScopeEq(entity=pst.EntityUid(type=etype)):
            return frozenset({str(etype)})
        case pst.ScopeIs(entity_type=etype) | pst.ScopeIsIn(entity_type=etype):
            return frozenset({str(etype)})
        case _:
            # `in` an entity admits descendants of any type; `==` a slot, or no constraint.
            return None


def _actions(
    constraint: pst.ActionConstraint, descendants: Callable[[frozenset[str]], frozenset[str]]
) -> frozenset[str] | None:
    match constraint:
        case pst.ActionEq(entity=uid):
            named = frozenset({uid.id}) if str(uid.type) == ACTION_TYPE else frozenset()
            return named
        case pst.ActionIn(entities=uids):
            named = frozenset(u.id for u in uids if str(u.type) == ACTION_TYPE)
            return named | descendants(named)
        case _:
            return None


class PolicyIndex:
    def __init__(
        self,
        policies: Sequence[PolicyRecord],
        descendants: Callable[[frozenset[str]], frozenset[str]],
    ) -> None:
        self._policies = list(policies)
        self._scopes = [
            _Scope(
                _entity_types(p.template.principal),
                _actions(p.template.action, descendants),
                _entity_types(p.template.resource),
            )
            for p in self._policies
        ]
        self._principal_types = _union(s.principal_types for s in self._scopes)
        self._actions = _union(s.actions for s in self._scopes)
        self._resource_types = _union(s.resource_types for s in self._scopes)
        self._sets: dict[IndexKey, Candidates] = {}

    @property
    def named_actions(self) -> frozenset[str]:
        return self._actions

    def key(self, principal_type: str, action: str, resource_type: str) -> IndexKey:
        return (
            principal_type if principal_type in self._principal_types else _OTHER,
            action if action in self._actions else _OTHER,
            resource_type if resource_type in self._resource_types else _OTHER,
        )

    def candidates(self, key: IndexKey) -> list[PolicyRecord]:
        ptype, action, rtype = key
        return [
            policy
            for policy, scope in zip(self._policies, self._scopes, strict=True)
            if _admits(scope.principal_types, ptype)
            and _admits(scope.actions, action)
            and _admits(scope.resource_types, rtype)
        ]

    def policy_set(self, key: IndexKey) -> Candidates:
        """The candidates' policy set and what their text reads, built once per key."""
        cached = self._sets.get(key)
        if cached is None:
            chosen = self.candidates(key)
            cached = self._sets[key] = Candidates(
                build_policy_set(chosen), _named_entities(chosen), _read_context(chosen)
            )
        return cached


@dataclass(frozen=True, slots=True)
class Candidates:
    """The policies that can apply to one key, as Cedar is handed them."""

    policy_set: cedarpy.PolicySet
    named: frozenset[EntityUid]  # the entities their text names (actions aside)
    reads_context: bool  # whether any of them mentions `context`


def build_policy_set(policies: Sequence[PolicyRecord]) -> cedarpy.PolicySet:
    nodes = pst.PolicySet(
        templates={},
        static_policies={p.policy_id: replace(p.template, id=p.policy_id) for p in policies},
        template_links=(),
    )
    return cedarpy.PolicySet.from_pst(nodes)


def _named_entities(policies: Sequence[PolicyRecord]) -> frozenset[EntityUid]:
    if not policies:
        return frozenset()
    return frozenset(
        (str(uid.type), uid.id)
        for uid in pst.entity_uids(tuple(p.template for p in policies))
        if str(uid.type) != ACTION_TYPE
    )


def _read_context(policies: Sequence[PolicyRecord]) -> bool:
    """True when a policy's tree has the variable `context` anywhere (walked with a stack,
    not recursion: a policy's depth is bounded by memory, not by the interpreter)."""
    stack: list[Any] = [p.template for p in policies]
    while stack:
        value = stack.pop()
        if isinstance(value, pst.Var):
            if value.name == "context":
                return True
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, tuple):
            stack.extend(value)
        elif is_dataclass(value) and not isinstance(value, type):
            stack.extend(getattr(value, f.name) for f in fields(value))
    return False


def _admits(allowed: frozenset[str] | None, value: str) -> bool:
    return allowed is None or value in allowed


def _union(sets: object) -> frozenset[str]:
    out: set[str] = set()
    for s in sets:  # type: ignore[attr-defined]
        if s is not None:
            out |= s
    return frozenset(out)
