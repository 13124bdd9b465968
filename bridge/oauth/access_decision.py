"""What a principal may have: everything a token request asks for, decided by the PDP.

read what is asked for (RAR, scope, resource) → plan the AuthZEN evaluations (the
deployment's mapping, `pdp_mapping`) → ask the PDP, one batch for everything → carry out
the decisions' obligations (`obligations`: a permit whose obligations cannot all be
carried out is a denial; a step-up answers instead) → any denial: let the extensions answer
instead (a deferred response, granted whole or not at all later) → the mapping says what
the decisions grant: everything (AROP) or what survives the narrowing (the token issuance
profile), else the refusal → the authorization claims, searched once the token is
permitted (`authorization_claims`) → issue.

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
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation, describe_denial
from .authorization_claims import AuthorizationClaims
from .extensions import TokenExtension
from .grants.base import Principal, TokenRequest
from .issuance import Issuer
from .obligations import Obligations
from .pdp_mapping import AccessRequestMapping, AskedToken, Granted, TokenRequestMapping
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
        mapping: TokenRequestMapping | None = None,
        *,
        obligations: Obligations | None = None,
        claims: AuthorizationClaims | None = None,
    ) -> None:
        self._profiles = profiles
        self._pdp = pdp
        self._issuer = issuer
        self.limits = limits
        self._extensions = extensions  # the OAuth assembly's list: later installs count
        self.mapping: TokenRequestMapping = mapping or AccessRequestMapping()
        # Later registrations count (the front door's step-up, notifications).
        self.obligations = obligations or Obligations()
        self.claims = claims or AuthorizationClaims(pdp, ())

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
            allow_none=self.mapping.allows_no_access,
        )
        jkt = request.proof.jkt if request.proof is not None else None
        asked = AskedToken(grant_type, request.client, principal, access, jkt)
        planned = self.plan(asked)
        decisions = await self.obligations.enforce(
            [p.request for p in planned],
            await self.decide(planned),
            grant_type=grant_type,
            client_id=request.client.client_id,
            principal=principal,
        )
        if not all(d.decision for d in decisions):
            for extension in self._extensions:
                await extension.on_denial(
                    request, grant_type, principal, access, planned, decisions
                )
        granted = self.mapping.grant(asked, planned, decisions, self._hints)
        context = planned[0].request.context if planned else None
        claims = await self.authorization_claims(principal, context, granted)
        return await self._issuer.issue(
            grant_type=grant_type,
            client=request.client,
            principal=principal,
            details=granted.details,
            scope=granted.scope,
            resource=granted.resource,
            proof=request.proof,
            shape=granted.shape,
            authorization_claims=claims,
        )

    async def authorization_claims(
        self, principal: Principal, context: dict[str, Any] | None, granted: Granted
    ) -> dict[str, list[str]]:
        """The claims resource searches give the token `granted` to `principal` (asked only
        now that it is permitted, with the context its evaluations had): for the subject the
        token names, at the audience it will carry (the profile's §6)."""
        if not self.claims.bindings:
            return {}
        if granted.shape is not None and granted.shape.token_type != "access_token":
            return {}  # an ID-JAG is a grant for another server, not an RFC 9068 token
        audience = self._issuer.audience_of(granted.resource, granted.details, granted.shape)
        return await self.claims.render(principal.subject, context, audience)

    def plan(self, asked: AskedToken) -> list[PlannedEvaluation]:
        """The evaluations `asked` needs under the deployment's mapping (also what consent
        previews and a direct deferral files)."""
        return self.mapping.plan(asked)

    async def decide(self, planned: Sequence[PlannedEvaluation]) -> list[Decision]:
        """One batch for everything asked (a lone evaluation, where the mapping says so, to
        the Access Evaluation API); an item the PDP failed on means no decision."""
        if len(planned) == 1 and self.mapping.lone_evaluation:
            decisions = [await self._pdp.evaluate(planned[0].request)]
        else:
            decisions = await self._pdp.evaluations(
                [p.request for p in planned], EvaluationsSemantic.execute_all
            )
        for item, decision in zip(planned, decisions, strict=True):
            if decision.context is not None and "error" in decision.context:
                # The PDP failed on this item: no decision, which is not a denial.
                raise PDPError(f"no decision for {describe_denial(item)}")
        return decisions

    def _hints(self, decision: Decision) -> list[str]:
        """What the extensions add to the refusal of a denied decision."""
        return [hint for extension in self._extensions if (hint := extension.denial_hint(decision))]
