"""What the consent page says: each thing the client asks for, in the words its profile
declares (`rar.describe`), with the PDP's view of it for this person and this client,
asked in one batch: allowed; needs an approval (from the policy's `@approval` template);
or not possible. The PDP decides again at `/token`: this is a preview, not a grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..authzen.models import Decision, requestable_denial
from ..oauth.access_decision import AccessDecision
from ..oauth.clients import GRANT_AUTHORIZATION_CODE, ClientRegistry
from ..oauth.grants.base import Principal
from ..oauth.pdp_mapping import AskedToken
from ..oauth.requested_access import RequestedAccess
from ..rar.describe import describe_planned
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation
from .authorization_request import AuthorizationRequest
from .person import Person, subject_for

Verdict = Literal["allowed", "approval", "denied"]


@dataclass(frozen=True)
class ConsentItem:
    text: str
    verdict: Verdict
    verdict_text: str


class ConsentView:
    def __init__(
        self,
        profiles: ProfileSet,
        decision: AccessDecision,
        max_evaluations: int,
        registry: ClientRegistry,
    ):
        self._profiles = profiles
        self._decision = decision
        self._max_evaluations = max_evaluations
        self._registry = registry

    async def items(self, request: AuthorizationRequest, person: Person) -> list[ConsentItem]:
        client = self._registry.get(request.client_id)
        if client is None:
            return []  # gone from the registry since the request: nothing it may have
        access = RequestedAccess(
            request.authorization_details,
            request.scope,
            request.resource,
            self._profiles,
            self._max_evaluations,
        )
        principal = Principal(
            subject=subject_for(person, client.client_id),
            token_sub=person.name,
            authentication=person.authentication() or None,
        )
        # Planned as /token will plan it (the deployment's mapping), so the preview asks
        # the PDP what the token request will ask.
        planned = self._decision.plan(
            AskedToken(GRANT_AUTHORIZATION_CODE, client, principal, access, request.dpop_jkt)
        )
        decisions = await self._decision.decide(planned)
        return [
            ConsentItem(self._text(request, item), *_verdict(decision))
            for item, decision in zip(planned, decisions, strict=True)
        ]

    def _text(self, request: AuthorizationRequest, item: PlannedEvaluation) -> str:
        return describe_planned(self._profiles, request.authorization_details, item)


def _verdict(decision: Decision) -> tuple[Verdict, str]:
    if decision.decision:
        return "allowed", "Allowed by the policy."
    if decision.requestable is not None:
        return "approval", f"Needs an approval first, from: {decision.requestable}."
    if requestable_denial(decision):
        return "approval", "Needs an approval first."
    return "denied", "Not possible: the policy does not allow it."
