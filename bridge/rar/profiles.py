"""RAR type profiles: what one `authorization_details` type allows and how it maps to AuthZEN.

A profile is data (a JSON file in `profiles/`), not code, so a deployment adds a type
without a release: the JSON Schema says which entries are valid (RFC 9396 §5 wants unknown
members refused), the `authzen` member says how an entry becomes resource/action pairs, and
`scopes` lets plain OAuth scope values be decided by the same policies. These are the
loaded, checked forms; `loader.py` reads and checks the files.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from jsonschema import Draft202012Validator

from .pointers import DerivedValue

# Entry members the mapping itself may use; every other member is a resource property.
MAPPED_MEMBERS = ("type", "actions", "locations", "identifier")
# Evaluation context members the bridge sets itself; a profile may not redefine them.
RESERVED_CONTEXT = ("client_id", "dpop_jkt", "resource")


@dataclass(frozen=True, slots=True)
class ResourceIdRule:
    """`auto` (from `locations`, else `identifier`) or one constant id for every entry."""

    mode: Literal["auto", "value"]
    value: str | None = None


@dataclass(frozen=True, slots=True)
class ActionsRule:
    """One evaluation per entry `actions` element, or a fixed list of action names."""

    mode: Literal["actions", "value"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthZENMapping:
    resource_type: str
    resource_id: ResourceIdRule
    actions: ActionsRule
    properties: Mapping[str, DerivedValue] = field(default_factory=dict)
    context: Mapping[str, DerivedValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScopeMapping:
    """What one OAuth `scope` value asks for, in AuthZEN terms."""

    scope: str
    profile_type: str
    resource_type: str
    resource_id: str
    action: str


@dataclass(frozen=True, slots=True)
class Profile:
    type: str
    description: str
    schema: Mapping[str, Any]
    authzen: AuthZENMapping
    scopes: Mapping[str, ScopeMapping]
    file: str
    validator: Draft202012Validator = field(compare=False, repr=False)
    # action → sentence template for people (`rar.describe`); may be empty.
    describe: Mapping[str, str] = field(default_factory=dict)


class ProfileSet:
    """Every loaded profile, by RAR `type`, and every scope value they claim."""

    __slots__ = ("_profiles", "_scopes", "valid_details")

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        by_type: dict[str, Profile] = {}
        scopes: dict[str, ScopeMapping] = {}
        for profile in profiles:
            if profile.type in by_type:
                raise ValueError(f"two profiles for type {profile.type!r}")
            by_type[profile.type] = profile
            for value, mapping in profile.scopes.items():
                if value in scopes:
                    raise ValueError(f"scope {value!r} is claimed twice")
                scopes[value] = mapping
        self._profiles = MappingProxyType(by_type)
        self._scopes = MappingProxyType(scopes)
        # `authorization_details` values already found valid (see authorization_details.py).
        self.valid_details: OrderedDict[tuple[str, frozenset[str] | None, int], None] = (
            OrderedDict()
        )

    @property
    def types(self) -> list[str]:
        """The supported types, sorted: `authorization_details_types_supported`."""
        return sorted(self._profiles)

    @property
    def scope_values(self) -> list[str]:
        return sorted(self._scopes)

    def get(self, type_: str) -> Profile | None:
        return self._profiles.get(type_)

    def scope(self, value: str) -> ScopeMapping | None:
        return self._scopes.get(value)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, type_: object) -> bool:
        return type_ in self._profiles
