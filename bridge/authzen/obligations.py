"""The AuthZEN Obligations Profile's object model: what a PDP asks a PEP to do with a
decision (openid/authzen `profiles/authzen-obligations-profile-1_0.md`, as merged).

A decision's `context.obligations` is an array of `{"id", "type", "properties"}`; the
`type` is a registered one (`step-up`, `notification`, `session_termination`) or `custom`,
and `properties` holds the type's own members. Nothing here carries an obligation out: the
PEP that enforces the decision does (`oauth.obligations` for tokens). What this module
settles is what a well-formed obligation is, because the profile makes a malformed one an
obligation the PEP "cannot comply" with, and that turns a permit into a denial
(§ "Non-Compliance and Partial Compliance").

A notification's `to` is one string in the merged draft and an array of strings in the
branch that adds `decision_subject`; both are read, as a tuple.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .models import Decision

# The registered types (§ "Normative Obligation Types") and the bilateral one.
STEP_UP = "step-up"
NOTIFICATION = "notification"
SESSION_TERMINATION = "session_termination"
CUSTOM = "custom"
# The metadata member that lists the types a party supports (§ "Discovery").
SUPPORTED_OBLIGATIONS = "supported_obligations"

# Bounds on what one decision may ask: a PDP is trusted to decide, not to flood.
MAX_OBLIGATIONS = 20
_MAX_ID = 200
_MAX_TEXT = 4000


class MalformedObligation(ValueError):
    """An obligation the profile's object model does not allow (a missing `id`, `type` or
    `properties`, or a type's REQUIRED member): one the PEP cannot comply with."""


@dataclass(frozen=True, slots=True)
class Obligation:
    """One Obligation object. `properties` are the type's members, as the PDP sent them."""

    id: str
    type: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepUp:
    """§ step-up: the subject must reach `acr_value` (an OpenID Connect `acr`), with every
    method of `amr_values` when given, before the decision may be honoured."""

    acr_value: str
    amr_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notification:
    """§ notification: transmit `body` (with `topic`, e.g. a subject line) to every
    destination of `to`; identifiers meaningful to the PEP's deployment."""

    to: tuple[str, ...]
    body: str
    topic: str | None = None


def read_obligations(decision: Decision) -> list[Obligation]:
    """The obligations a decision carries ([] when its context has none). Raises
    `MalformedObligation` when `context.obligations` is there but not the profile's shape:
    the caller treats the decision as one it cannot comply with."""
    context = decision.context or {}
    if "obligations" not in context:
        return []
    items = context["obligations"]
    if not isinstance(items, list):
        raise MalformedObligation("context.obligations is not an array")
    if len(items) > MAX_OBLIGATIONS:
        raise MalformedObligation(f"more than {MAX_OBLIGATIONS} obligations on one decision")
    found: list[Obligation] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedObligation(f"obligation {n} is not an object")
        ident, kind, properties = item.get("id"), item.get("type"), item.get("properties")
        if not isinstance(ident, str) or not _short_text(ident):
            raise MalformedObligation(f"obligation {n} has no string id")
        if not isinstance(kind, str) or not _short_text(kind):
            raise MalformedObligation(f"obligation {ident!r} has no string type")
        if not isinstance(properties, dict):
            # REQUIRED in the merged draft; the first draft's flat members are not read.
            raise MalformedObligation(f"obligation {ident!r} has no properties object")
        found.append(Obligation(ident, kind, properties))
    ids = [o.id for o in found]
    if len(set(ids)) != len(ids):
        raise MalformedObligation("two obligations share an id")
    return found


def step_up_of(obligation: Obligation) -> StepUp:
    """The members of a `step-up` obligation; `MalformedObligation` without `acr_value`."""
    acr = obligation.properties.get("acr_value")
    if not isinstance(acr, str) or not acr or len(acr) > _MAX_ID:
        raise MalformedObligation(f"step-up {obligation.id!r} has no acr_value")
    amr = obligation.properties.get("amr_values", [])
    if not isinstance(amr, list) or not all(_short_text(m) for m in amr):
        raise MalformedObligation(f"step-up {obligation.id!r}: amr_values is not strings")
    return StepUp(acr, tuple(amr))


def notification_of(obligation: Obligation) -> Notification:
    """The members of a `notification` obligation; `MalformedObligation` without a
    destination or a body."""
    to = obligation.properties.get("to")
    destinations = [to] if isinstance(to, str) else to
    if (
        not isinstance(destinations, list)
        or not destinations
        or not all(_short_text(d) for d in destinations)
    ):
        raise MalformedObligation(f"notification {obligation.id!r} has no destination (to)")
    body = obligation.properties.get("body")
    if not isinstance(body, str) or not body or len(body) > _MAX_TEXT:
        raise MalformedObligation(f"notification {obligation.id!r} has no body")
    topic = obligation.properties.get("topic")
    if topic is not None and not _short_text(topic):
        raise MalformedObligation(f"notification {obligation.id!r}: topic is not a string")
    return Notification(tuple(dict.fromkeys(destinations)), body, topic)


def _short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_ID
