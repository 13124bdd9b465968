"""What a principal may have: everything a token request asks for, decided by the PDP.

read what is asked for (RAR, scope, resource) → plan the AuthZEN evaluations → ask the PDP,
one batch for everything → all permitted: issue; any denial: let the extensions answer
instead (a deferred response), else refuse the whole request with the first denial.

Client authentication, the grant, DPoP and RAR syntax are all checked before the PDP is
asked: a permit never stands in for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..authzen.errors import PDPError
from ..authzen.models import Decision, EvaluationsSemantic
from ..authzen.pdp import PDP
from ..errors import InvalidScope, OAuthError
from ..rar.errors import InvalidAuthorizationDetails
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation, describe_denial
from .extensions import TokenExtension
from .grants.base import Principal, TokenRequest
from .issuance import Issuer
from .requested_access import read_requested_access


@dataclass(frozen=True)
class DecisionLimits:
    max_authorization_details: int
    max_evaluations: int


class AccessDecision:
    def __init__(
        self,
        profiles: ProfileSet,
        pdp: PDP,
        issuer: Issuer,
        limits: DecisionLimits,
        extensions: Sequence[TokenExtension],
    ) -> None:
        self._profiles = profiles
        self._pdp = pdp
        self._issuer = issuer
        self.limits = limits
        self._extensions = extensions  # the OAuth assembly's list: later installs count

    async def issue_for(
        self, request: TokenRequest, grant_type: str, principal: Principal
    ) -> dict[str, Any]:
        access = read_requested_access(
            request.form,
            request.client,
            principal,
            self._profiles,
            max_entries=self.limits.max_authorization_details,
            max_evaluations=self.limits.max_evaluations,
        )
        planned = access.plan(principal, request.client, request.proof)
        decisions = await self.decide(planned)
        if not all(d.decision for d in decisions):
            for extension in self._extensions:
                await extension.on_denial(
                    request, grant_type, principal, access, planned, decisions
                )
            raise self._refusal(planned, decisions)
        return await self._issuer.issue(
            grant_type=grant_type,
            client=request.client,
            principal=principal,
            details=access.details,
            scope=access.scope,
            resource=access.resource,
            proof=request.proof,
        )

    async def decide(self, planned: Sequence[PlannedEvaluation]) -> list[Decision]:
        """One batch for everything asked; an item the PDP failed on means no decision."""
        decisions = await self._pdp.evaluations(
            [p.request for p in planned], EvaluationsSemantic.execute_all
        )
        for item, decision in zip(planned, decisions, strict=True):
            if decision.context is not None and "error" in decision.context:
                # The PDP failed on this item: no decision, which is not a denial.
                raise PDPError(f"no decision for {describe_denial(item)}")
        return decisions

    def _refusal(
        self, planned: Sequence[PlannedEvaluation], decisions: Sequence[Decision]
    ) -> OAuthError:
        """The error for the first denial, with what the extensions add about it."""
        item, decision = next(
            (p, d) for p, d in zip(planned, decisions, strict=True) if not d.decision
        )
        description = describe_denial(item)
        for extension in self._extensions:
            hint = extension.denial_hint(decision)
            if hint:
                description += f"; {hint}"
        if item.source == "scope":
            return InvalidScope(description)
        return InvalidAuthorizationDetails(description)
