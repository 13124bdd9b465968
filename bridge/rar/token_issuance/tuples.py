"""The evaluations one token request becomes under the token issuance profile (§5).

For each requested target (§5.2): a gate tuple (§5.3.1; the token exchange binding adds the
requesting party's, §4.3.2) and one scope tuple per scope (§5.3.3), each on `resource.type`
`audience` with the target as `resource.id`; then one tuple per cell of each
`authorization_details` entry (§5.3.4): the entry's `type`, each `locations` value
verbatim, each action, `<action>:<datatype>` for each datatype. Gates lead the batch
(§5.5.1), so which target, scope or cell a decision belongs to is known by position.

A two-level evaluation (binding §4.4.1, an ID-JAG) asks gates and scopes at level 1, the
artifact's consumer, and scopes and cells at level 2, the RFC 8707 resources behind it.

The number of evaluations is bounded (§5.5.3): past the bound the request is refused with
the error of the parameter that overran it, named by `TooManyEvaluations.parameter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ...authzen.models import Action, EvaluationRequest, Resource, Subject
from ...errors import InvalidScope
from ..errors import InvalidAuthorizationDetails
from ..profiles import ProfileSet
from ..schema_messages import show
from ..translate import PlannedEvaluation, derived_members
from .names import GATE_PREFIX, NO_ACTION

AUDIENCE = "audience"  # the one resource type of gate and scope tuples (§5.2, §13.2)

# The members a cell decomposes; the others go to the PDP as advisory properties.
DECOMPOSED = ("type", "locations", "actions", "datatypes")

Parameter = Literal["resource", "scope", "authorization_details"]


@dataclass(frozen=True)
class IssuanceQuestion:
    """What one token request asks, once the AS's own checks are done.

    `subject` is the party the token will represent (its `sub`); `requesting_party` the
    token exchange binding's second party (the actor token's, else the client), None for a
    grant that names one party. `targets` are the requested targets (never empty: the AS's
    default audience stands in for none); `resources` the second level of a two-level
    evaluation, empty for one level. `context` goes on every tuple.
    """

    subject: Subject
    gate_action: str
    targets: tuple[str, ...]
    context: Mapping[str, Any]
    requesting_party: Subject | None = None
    resources: tuple[str, ...] = ()

    @property
    def two_level(self) -> bool:
        return bool(self.resources)

    @property
    def parties(self) -> list[Subject]:
        """Whose gates are asked: the subject's first, then the requesting party's, unless
        the two are one entity (binding §4.3.2: then one gate may stand for both)."""
        party = self.requesting_party
        if party is None or (party.type, party.id) == (self.subject.type, self.subject.id):
            return [self.subject]
        return [self.subject, party]

    def cell_locations(self) -> tuple[str, ...]:
        """What an entry without `locations` is decided at (§5.3.4; binding §4.4.1)."""
        return self.resources if self.two_level else self.targets


class TooManyEvaluations(Exception):
    """The request would need more evaluations than the bound (§5.5.3)."""

    def __init__(self, parameter: Parameter, bound: int) -> None:
        super().__init__(f"the request needs more than {bound} evaluations")
        self.parameter = parameter
        self.bound = bound


def form_batch(
    question: IssuanceQuestion,
    entries: Sequence[dict[str, Any]],
    scopes: Sequence[str],
    profiles: ProfileSet,
    *,
    max_evaluations: int,
) -> list[PlannedEvaluation]:
    """Every tuple of the request, gates first, then scopes, then cells.

    `entries` must have passed `parse_authorization_details` against `profiles`. Raises
    `InvalidScope` for a scope in the reserved `issue:` space, `InvalidAuthorizationDetails`
    for an entry that cannot be decomposed, `TooManyEvaluations` past the bound.
    """
    batch = _Batch(max_evaluations)
    subject = _without_actor(question.subject)
    parties = [subject, *(_without_actor(p) for p in question.parties[1:])]
    batch.add(
        "resource",
        [
            _tuple(question, party, question.gate_action, target, "gate")
            for target in question.targets
            for party in parties
        ],
    )
    for value in scopes:
        if value.startswith(GATE_PREFIX):
            # §5.3.1: the prefix is reserved; such a scope could pass for a gate.
            raise InvalidScope(f"scope {show(value)} is in the reserved issue: space")
    levels = [(question.targets, 1)] + ([(question.resources, 2)] if question.two_level else [])
    batch.add(
        "scope",
        [
            _tuple(question, subject, value, target, "scope", level=level)
            for where, level in levels
            for target in where
            for value in scopes
        ],
    )
    for index, entry in enumerate(entries):
        batch.add("authorization_details", _cells(question, subject, index, entry, profiles))
    return batch.planned


class _Batch:
    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.planned: list[PlannedEvaluation] = []

    def add(self, parameter: Parameter, planned: list[PlannedEvaluation]) -> None:
        if len(self.planned) + len(planned) > self.bound:
            raise TooManyEvaluations(parameter, self.bound)
        self.planned.extend(planned)


def _tuple(
    question: IssuanceQuestion,
    subject: Subject,
    action: str,
    target: str,
    source: Literal["gate", "scope"],
    *,
    level: int = 1,
) -> PlannedEvaluation:
    return PlannedEvaluation(
        EvaluationRequest(
            subject=subject,
            action=Action(name=action),
            resource=Resource(type=AUDIENCE, id=target),
            context=dict(question.context),
        ),
        source,
        action,
        scope=action if source == "scope" else None,
        target=target,
        level=level,
    )


def _cells(
    question: IssuanceQuestion,
    subject: Subject,
    index: int,
    entry: dict[str, Any],
    profiles: ProfileSet,
) -> list[PlannedEvaluation]:
    where = f"authorization_details[{index}]"
    if entry["type"] == AUDIENCE:
        # Its cells would read as gate or scope tuples (§5.3.4 relies on the difference).
        raise InvalidAuthorizationDetails(f'{where}: type "audience" cannot be decided')
    locations = _axis(entry, "locations", where) or list(question.cell_locations())
    actions = _axis(entry, "actions", where) or [NO_ACTION]
    datatypes: list[str | None] = list(_axis(entry, "datatypes", where))
    if not datatypes or any(":" in d for d in datatypes if d):
        # §5.3.4: no compound name from a datatype holding a colon; that axis then stays
        # undecomposed (and is narrowed only by what the PDP returns).
        datatypes = [None]
    profile = profiles.get(entry["type"])
    derived_properties: dict[str, Any] = {}
    derived_context: dict[str, Any] = {}
    if profile is not None:
        derived_properties = derived_members(index, entry, profile.authzen.properties)
        derived_context = derived_members(index, entry, profile.authzen.context)
    # Undecomposed members reach the PDP as advisory properties (§1.1): the decision rests
    # on the five-tuple, but a policy may still read an amount. Shared, not copied: parsed
    # request data that nothing mutates.
    properties = {k: v for k, v in entry.items() if k not in DECOMPOSED}
    properties.update(derived_properties)
    context = {**question.context, **derived_context}
    level = 2 if question.two_level else 1
    return [
        PlannedEvaluation(
            EvaluationRequest(
                subject=subject,
                action=Action(name=action if datatype is None else f"{action}:{datatype}"),
                resource=Resource(type=entry["type"], id=location, properties=properties or None),
                context=context,
            ),
            "authorization_details",
            action,
            entry_index=index,
            target=location,
            datatype=datatype,
            level=level,
        )
        for location in locations
        for action in actions
        for datatype in datatypes
    ]


def _axis(entry: dict[str, Any], member: str, where: str) -> list[str]:
    """The values of a common array member, once each; [] when the entry has none."""
    if member not in entry:
        return []
    values: list[str] = entry[member]
    if not values:
        raise InvalidAuthorizationDetails(f"{where}.{member}: must not be empty")
    for position, value in enumerate(values):
        if not value:
            raise InvalidAuthorizationDetails(f"{where}.{member}[{position}]: must not be empty")
    return list(dict.fromkeys(values))


def _without_actor(subject: Subject) -> Subject:
    """The subject as the profile names it: who the token represents. The acting client is
    `context.client_id`, and a requesting party has its own gate: `properties.act` (AROP's
    way of saying either) is left out, the other properties stay, advisory."""
    properties = {k: v for k, v in (subject.properties or {}).items() if k != "act"}
    return Subject(type=subject.type, id=subject.id, properties=properties or None)
