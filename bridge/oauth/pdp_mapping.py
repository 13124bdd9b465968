"""How a token request becomes AuthZEN evaluations, and what the decisions make of it: the
seam between the access decision (`access_decision.AccessDecision`) and the mapping a
deployment chose (`pdp.mapping`).

Two mappings exist, side by side in docs/pdp-mappings.md:

- `AccessRequestMapping` (`arop`, the default): the Access Request OAuth Profile's, through
  the RAR type profiles; all or nothing, a denial refuses the whole request;
- `issuance_mapping.TokenIssuanceMapping` (`token_issuance`): the OpenID AuthZEN token
  issuance profile's, with gate tuples, verbatim scopes and locations, narrowing and the
  PDP's `context.issuance`.

Either way a requestable denial that the extensions take up (the Deferred Token Response)
is answered before the mapping's `grant` is asked: a deferred request is all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..authzen.models import Decision
from ..errors import InvalidRequest, InvalidScope, OAuthError
from ..rar.errors import InvalidAuthorizationDetails
from ..rar.translate import PlannedEvaluation, describe_denial
from .clients import Client
from .grants.base import Principal
from .grants.token_exchange import ID_JAG_TOKEN_TYPE
from .issuance_shaping import TokenShape
from .requested_access import RequestedAccess

# What the extensions add to the refusal of a denied decision ("retry with
# completion_mode=deferred"): the bridge's own words, never the PDP's reasons.
Hints = Callable[[Decision], list[str]]


@dataclass(frozen=True)
class AskedToken:
    """One token request, as a mapping sees it: the grant, who asks (the client), for
    whom (the principal, with a token exchange's delegation), what, and the DPoP key the
    token will be bound to (a proof's, or an authorization request's `dpop_jkt`)."""

    grant_type: str
    client: Client
    principal: Principal
    access: RequestedAccess
    jkt: str | None = None


@dataclass(frozen=True)
class Granted:
    """What the token carries: the entries, scope and RFC 8707 resources granted, and
    under the token issuance mapping its shape (audience, lifetime, claims, kind)."""

    details: list[dict[str, Any]]
    scope: list[str]
    resource: list[str]
    shape: TokenShape | None = None


class TokenRequestMapping(Protocol):
    """A mapping from token requests to AuthZEN evaluations, e.g.

    mapping = AccessRequestMapping()
    planned = mapping.plan(asked)
    decisions = await pdp.evaluations([p.request for p in planned])
    granted = mapping.grant(asked, planned, decisions, hints=lambda d: [])
    """

    # The name `pdp.mapping` selects it by.
    name: str
    # Whether a plan of one evaluation goes to the Access Evaluation API rather than as a
    # batch of one (the token issuance profile §5.5.1 says so; AROP says nothing).
    lone_evaluation: bool
    # Whether a request may ask for neither `scope` nor `authorization_details` (a gate
    # alone decides it, and the PDP may grant scopes: token issuance profile §9.3).
    allows_no_access: bool

    def plan(self, asked: AskedToken) -> list[PlannedEvaluation]:
        """Every evaluation `asked` needs, in the order the PDP gets them; raise the
        `OAuthError` for a request that cannot be asked about (e.g. too many)."""
        ...

    def grant(
        self,
        asked: AskedToken,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
        hints: Hints,
    ) -> Granted:
        """What to issue, given one decision per planned evaluation; raise the refusal
        (an `OAuthError`), or a `PDPError` for decisions that cannot be applied."""
        ...


class AccessRequestMapping:
    """AROP §2 and §3: each entry one evaluation per (resource id x action) through its
    RAR type profile, each scope through its profile's scope table (`rar.translate`); the
    request is granted whole, or refused with its first denial."""

    name = "arop"
    lone_evaluation = False
    allows_no_access = False

    def plan(self, asked: AskedToken) -> list[PlannedEvaluation]:
        delegation = asked.principal.delegation
        if delegation is not None and delegation.requested_token_type == ID_JAG_TOKEN_TYPE:
            # What an ID-JAG may name is decided on two levels, which only the token
            # issuance mapping asks (its binding §4.4.1).
            raise InvalidRequest("an ID-JAG is issued under the token_issuance mapping only")
        return asked.access.plan(asked.principal, asked.client, jkt=asked.jkt)

    def grant(
        self,
        asked: AskedToken,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
        hints: Hints,
    ) -> Granted:
        denied = next(
            ((p, d) for p, d in zip(planned, decisions, strict=True) if not d.decision), None
        )
        if denied is None:
            access = asked.access
            return Granted(access.details, access.scope, access.resource)
        raise refusal(*denied, hints)


def refusal(planned: PlannedEvaluation, decision: Decision, hints: Hints) -> OAuthError:
    """AROP §3's error for a denial, with what the extensions add about it."""
    description = "; ".join([describe_denial(planned), *hints(decision)])
    if planned.source == "scope":
        return InvalidScope(description)
    return InvalidAuthorizationDetails(description)
