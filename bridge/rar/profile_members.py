"""Checks of a profile's `authzen` and `scopes` members, one small method per member.

Split from the loader so each rule is easy to find: a profile author who gets a message
such as `authzen.properties.amount_minor.scale: must be an integer from 0 to 18` should be
able to read the rule that produced it next to its neighbours.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from .json_lines import JSONPath
from .pointers import MAX_SCALE, DerivedValue, PointerSyntaxError, parse_pointer
from .profiles import (
    RESERVED_CONTEXT,
    ActionsRule,
    AuthZENMapping,
    ResourceIdRule,
    ScopeMapping,
)

_AUTHZEN_MEMBERS = ("resource_type", "resource_id", "actions", "properties", "context")
_DERIVED_MEMBERS = ("pointer", "as", "scale")
_SCOPE_MEMBERS = ("resource_id", "action")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class MemberChecker:
    """Reports through `problem(path, message)`; returns None for a member it refused."""

    def problem(self, path: JSONPath, message: str) -> None:
        raise NotImplementedError

    def unknown_members(self, obj: dict[str, Any], path: JSONPath, known: tuple[str, ...]) -> None:
        for name in obj:
            if name not in known:
                self.problem((*path, name), "unknown member")

    def string(
        self,
        obj: dict[str, Any],
        path: JSONPath,
        *,
        required: bool = False,
        non_empty: bool = False,
    ) -> str | None:
        name = path[-1]
        assert isinstance(name, str)
        if name not in obj:
            if required:
                self.problem(path[:-1], f'"{name}" is required')
            return None
        value = obj[name]
        if not isinstance(value, str) or (non_empty and not value):
            self.problem(path, "must be a non-empty string" if non_empty else "must be a string")
            return None
        return value

    def authzen(self, raw: Any, schema: dict[str, Any] | None) -> AuthZENMapping | None:
        path: JSONPath = ("authzen",)
        if raw is None:
            self.problem((), '"authzen" is required')
            return None
        if not isinstance(raw, dict):
            self.problem(path, "must be an object")
            return None
        self.unknown_members(raw, path, _AUTHZEN_MEMBERS)
        resource_type = self.string(raw, (*path, "resource_type"), required=True, non_empty=True)
        resource_id = self._resource_id(raw, path)
        actions = self._actions(raw, path)
        entry_members = set((schema or {}).get("properties", {}))
        properties = self._derived_map(
            raw, (*path, "properties"), entry_members, "is already an entry member"
        )
        context = self._derived_map(
            raw, (*path, "context"), set(RESERVED_CONTEXT), "is set by the bridge"
        )
        if None in (resource_type, resource_id, actions, properties, context):
            return None
        assert resource_type is not None and resource_id is not None and actions is not None
        assert properties is not None and context is not None
        return AuthZENMapping(resource_type, resource_id, actions, properties, context)

    def _resource_id(self, raw: dict[str, Any], path: JSONPath) -> ResourceIdRule | None:
        value = raw.get("resource_id")
        if value == "auto":
            return ResourceIdRule("auto")
        constant = self._constant(value)
        if isinstance(constant, str) and constant:
            return ResourceIdRule("value", constant)
        self.problem(
            (*path, "resource_id") if "resource_id" in raw else path,
            'resource_id must be "auto" or {"value": "<non-empty string>"}',
        )
        return None

    def _actions(self, raw: dict[str, Any], path: JSONPath) -> ActionsRule | None:
        value = raw.get("actions")
        if value == "actions":
            return ActionsRule("actions")
        names = self._constant(value)
        if (
            isinstance(names, list)
            and names
            and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == len(names)
        ):
            return ActionsRule("value", tuple(names))
        self.problem(
            (*path, "actions") if "actions" in raw else path,
            'actions must be "actions" or {"value": [<distinct non-empty strings>]}',
        )
        return None

    @staticmethod
    def _constant(value: Any) -> Any:
        """The `x` of `{"value": x}`, or None when `value` has another shape."""
        if isinstance(value, dict) and set(value) == {"value"}:
            return value["value"]
        return None

    def _derived_map(
        self, raw: dict[str, Any], path: JSONPath, taken: set[str], taken_by: str
    ) -> MappingProxyType[str, DerivedValue] | None:
        name = path[-1]
        if name not in raw:
            return MappingProxyType({})
        members = raw[name]
        if not isinstance(members, dict):
            self.problem(path, "must be an object")
            return None
        out: dict[str, DerivedValue] = {}
        for member, spec in members.items():
            where = (*path, member)
            if not member:
                self.problem(where, "a name must not be empty")
            elif member in taken:
                self.problem(where, f'"{member}" {taken_by}; choose another name')
            else:
                derived = self._derived(spec, where)
                if derived is not None:
                    out[member] = derived
        return MappingProxyType(out) if len(out) == len(members) else None

    def _derived(self, spec: Any, path: JSONPath) -> DerivedValue | None:
        if isinstance(spec, str):
            tokens = self._pointer(spec, path)
            return None if tokens is None else DerivedValue(spec, tokens)
        if not isinstance(spec, dict):
            self.problem(
                path, 'must be a JSON Pointer or {"pointer": ..., "as": ..., "scale": ...}'
            )
            return None
        self.unknown_members(spec, path, _DERIVED_MEMBERS)
        pointer = self.string(spec, (*path, "pointer"), required=True)
        tokens = None if pointer is None else self._pointer(pointer, (*path, "pointer"))
        conversion = spec.get("as", "value")
        scale = spec.get("scale")
        if conversion not in ("value", "minor_units"):
            self.problem((*path, "as"), 'must be "value" or "minor_units"')
            return None
        if conversion == "value" and "scale" in spec:
            self.problem((*path, "scale"), 'only applies with "as": "minor_units"')
            return None
        if conversion == "minor_units" and (
            not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= MAX_SCALE
        ):
            self.problem((*path, "scale"), f"must be an integer from 0 to {MAX_SCALE}")
            return None
        if pointer is None or tokens is None:
            return None
        return DerivedValue(pointer, tokens, conversion, scale or 0)

    def _pointer(self, text: str, path: JSONPath) -> tuple[str, ...] | None:
        try:
            return parse_pointer(text)
        except PointerSyntaxError as exc:
            self.problem(path, f"not a JSON Pointer: {exc}")
            return None

    def scopes(
        self, raw: Any, profile_type: str | None, authzen: AuthZENMapping | None
    ) -> MappingProxyType[str, ScopeMapping]:
        path: JSONPath = ("scopes",)
        if raw is None:
            return MappingProxyType({})
        if not isinstance(raw, dict):
            self.problem(path, "must be an object: scope value -> {resource_id, action}")
            return MappingProxyType({})
        out: dict[str, ScopeMapping] = {}
        for scope, target in raw.items():
            where = (*path, scope)
            if not _SCOPE_TOKEN.fullmatch(scope):
                self.problem(where, "not a valid OAuth scope value (RFC 6749 §3.3)")
                continue
            if not isinstance(target, dict):
                self.problem(where, 'must be {"resource_id": ..., "action": ...}')
                continue
            self.unknown_members(target, where, _SCOPE_MEMBERS)
            resource_id = self.string(
                target, (*where, "resource_id"), required=True, non_empty=True
            )
            action = self.string(target, (*where, "action"), required=True, non_empty=True)
            if resource_id and action and profile_type and authzen:
                out[scope] = ScopeMapping(
                    scope, profile_type, authzen.resource_type, resource_id, action
                )
        return MappingProxyType(out)
