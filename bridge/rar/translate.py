"""From validated `authorization_details` and `scope` values to AuthZEN evaluations (AROP §2).

Each entry becomes one evaluation per (resource id x action), because RFC 9396 reads the
common fields as a product; each scope value becomes one evaluation through its profile's
scope table. Every evaluation remembers where it came from, so a denial can be reported
against the entry or scope that caused it: `invalid_authorization_details` for an entry,
`invalid_scope` for a scope (AROP §3), with a description that names no policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..authzen.models import Action, EvaluationRequest, Resource, Subject
from ..errors import InvalidScope, OAuthError
from .errors import InvalidAuthorizationDetails
from .pointers import DerivedValue, NotRepresentable, display_path
from .profiles import ActionsRule, Profile, ProfileSet, ResourceIdRule
from .resource_ids import UndecodableSegment, resource_id_from_location
from .schema_messages import show

# Where an evaluation comes from: an entry, a scope value, or (the token issuance mapping
# only, `rar.token_issuance`) the gate that asks whether a token may be issued at all.
Source = Literal["authorization_details", "scope", "gate"]


@dataclass(frozen=True, slots=True)
class TokenRequestContext:
    """What the token endpoint knows about the request, beyond what is being asked for.

    `subject` is built by the grant (the principal, with `properties.act` for an actor);
    `resource` holds the RFC 8707 `resource` values as sent.
    """

    subject: Subject
    client_id: str
    dpop_jkt: str | None = None
    resource: Sequence[str] = field(default_factory=tuple)

    def evaluation_context(self) -> dict[str, Any]:
        """The authorization-relevant context set (AROP §2): nothing volatile."""
        context: dict[str, Any] = {"client_id": self.client_id}
        if self.dpop_jkt is not None:
            context["dpop_jkt"] = self.dpop_jkt
        if self.resource:
            context["resource"] = list(self.resource)
        return context


@dataclass(frozen=True, slots=True)
class PlannedEvaluation:
    """One evaluation to send, and the entry (by index) or scope value it stands for.

    The token issuance mapping says more, because its denials narrow rather than refuse:
    `target` is the issuance target a gate or scope tuple asks about (or the location a
    cell names), `datatype` a cell's datatype, and `level` 2 marks a tuple of the second
    level of a two-level evaluation (an ID-JAG's resources behind its audience).
    """

    request: EvaluationRequest
    source: Source
    action: str
    entry_index: int | None = None
    scope: str | None = None
    target: str | None = None
    datatype: str | None = None
    level: int = 1

    @property
    def origin(self) -> str:
        if self.source == "scope":
            return f"scope {show(self.scope)}"
        if self.source == "gate":
            return f"the token for {show(self.target)}"
        return f"authorization_details[{self.entry_index}]"


def plan_evaluations(
    entries: Sequence[dict[str, Any]],
    scopes: Sequence[str] | None,
    request: TokenRequestContext,
    profiles: ProfileSet,
    *,
    max_evaluations: int | None = None,
) -> list[PlannedEvaluation]:
    """Every evaluation the token request needs, entries first, then scopes in order.

    `entries` must have passed `parse_authorization_details` against the same `profiles`.
    Raises `InvalidAuthorizationDetails` for an entry that names no resource or action, or
    whose derived value cannot be converted, and `InvalidScope` for an unmapped scope.
    """
    planned: list[PlannedEvaluation] = []
    for index, entry in enumerate(entries):
        profile = profiles.get(entry["type"])
        if profile is None:
            raise InvalidAuthorizationDetails(f"{_at(index)}: unknown type {show(entry['type'])}")
        planned.extend(_plan_entry(index, entry, profile, request, max_evaluations, len(planned)))
    for value in dict.fromkeys(scopes or ()):
        mapping = profiles.scope(value)
        if mapping is None:
            raise InvalidScope(f"unknown scope {show(value)}")
        if max_evaluations is not None and len(planned) >= max_evaluations:
            raise InvalidScope(f"the request needs more than {max_evaluations} evaluations")
        evaluation = EvaluationRequest(
            subject=request.subject,
            action=Action(name=mapping.action),
            resource=Resource(type=mapping.resource_type, id=mapping.resource_id),
            context=request.evaluation_context(),
        )
        planned.append(PlannedEvaluation(evaluation, "scope", mapping.action, scope=value))
    return planned


def describe_denial(planned: PlannedEvaluation) -> str:
    """`authorization_details[0]: action "export" on CustomerRecord "42" is not permitted`."""
    resource = planned.request.resource
    return (
        f"{planned.origin}: action {show(planned.action)} on {resource.type} "
        f"{show(resource.id)} is not permitted"
    )


def refusal(planned: PlannedEvaluation) -> OAuthError:
    """The error for a plain (non-requestable) denial of `planned` (AROP §3)."""
    if planned.source == "scope":
        return InvalidScope(describe_denial(planned))
    return InvalidAuthorizationDetails(describe_denial(planned))


def _plan_entry(
    index: int,
    entry: dict[str, Any],
    profile: Profile,
    request: TokenRequestContext,
    max_evaluations: int | None,
    already: int,
) -> list[PlannedEvaluation]:
    mapping = profile.authzen
    resource_ids, used_for_id = _resource_ids(index, entry, mapping.resource_id)
    actions, used_for_actions = _actions(index, entry, mapping.actions)
    count = len(resource_ids) * len(actions)
    if max_evaluations is not None and already + count > max_evaluations:
        raise InvalidAuthorizationDetails(
            f"authorization_details: the request needs more than {max_evaluations} evaluations"
        )
    # Whatever the mapping did not use still constrains the request: the PDP must see it.
    used = {"type", *used_for_id, *used_for_actions}
    # Values are shared with `entries`, not copied: both are parsed request data that nothing
    # mutates, and a deep copy of a deeply nested member could exhaust the stack.
    properties = {k: v for k, v in entry.items() if k not in used}
    properties.update(derived_members(index, entry, mapping.properties))
    context = {**request.evaluation_context(), **derived_members(index, entry, mapping.context)}
    return [
        PlannedEvaluation(
            EvaluationRequest(
                subject=request.subject,
                action=Action(name=action),
                resource=Resource(
                    type=mapping.resource_type, id=resource_id, properties=properties or None
                ),
                context=context,
            ),
            "authorization_details",
            action,
            entry_index=index,
        )
        for resource_id in resource_ids
        for action in actions
    ]


def _resource_ids(
    index: int, entry: dict[str, Any], rule: ResourceIdRule
) -> tuple[list[str], tuple[str, ...]]:
    if rule.mode == "value":
        assert rule.value is not None
        return [rule.value], ()
    if "locations" in entry:
        locations: list[str] = entry["locations"]
        if not locations:
            raise InvalidAuthorizationDetails(f"{_at(index)}.locations: must not be empty")
        ids = []
        for position, location in enumerate(locations):
            try:
                resource_id = resource_id_from_location(location)
            except UndecodableSegment as exc:
                raise InvalidAuthorizationDetails(
                    f"{_at(index)}.locations[{position}]: {exc}"
                ) from None
            if not resource_id:
                raise InvalidAuthorizationDetails(
                    f"{_at(index)}.locations[{position}]: must not be empty"
                )
            ids.append(resource_id)
        # Two locations naming one id ask for nothing more; evaluate it once.
        return list(dict.fromkeys(ids)), ("locations",)
    if "identifier" in entry:
        if not entry["identifier"]:
            raise InvalidAuthorizationDetails(f"{_at(index)}.identifier: must not be empty")
        return [entry["identifier"]], ("identifier",)
    raise InvalidAuthorizationDetails(
        f'{_at(index)}: "locations" or "identifier" is required to name the resource'
    )


def _actions(
    index: int, entry: dict[str, Any], rule: ActionsRule
) -> tuple[list[str], tuple[str, ...]]:
    if rule.mode == "value":
        return list(rule.values), ()
    if "actions" not in entry:
        raise InvalidAuthorizationDetails(f'{_at(index)}: "actions" is required')
    actions: list[str] = entry["actions"]
    if not actions:
        raise InvalidAuthorizationDetails(f"{_at(index)}.actions: must not be empty")
    for position, action in enumerate(actions):
        if not action:
            raise InvalidAuthorizationDetails(
                f"{_at(index)}.actions[{position}]: must not be empty"
            )
    # A repeated action asks for nothing more; evaluate it once.
    return list(dict.fromkeys(actions)), ("actions",)


def derived_members(
    index: int, entry: dict[str, Any], members: Mapping[str, DerivedValue]
) -> dict[str, Any]:
    """The values a profile derives from entry `index` (its `authzen.properties` or
    `authzen.context`), by name; a value that cannot be converted is the client's error."""
    out: dict[str, Any] = {}
    for name, derived in members.items():
        try:
            found, value = derived.extract(entry)
        except NotRepresentable as exc:
            where = display_path(derived.tokens)
            raise InvalidAuthorizationDetails(
                f"{_at(index)}{where}: {exc} (as minor units, scale {derived.scale})"
            ) from None
        if found:
            out[name] = value
    return out


def _at(index: int) -> str:
    return f"authorization_details[{index}]"
