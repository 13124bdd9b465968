"""Direct deferral at the authorization endpoint (DTR PR #47; `front_door.direct_deferral`):
what the front door calls at consent (`front_door.direct_deferral.AuthorizationDeferral`).

the client may poll (deferred grant), and a public one named a `dpop_jkt` (its polls are
then sender-constrained by DPoP) → decide what was consented, for the person with the client
acting (AROP §2) → everything permitted, or something plainly denied: no deferral, a code as
usual → else file the access request and store the deferral, bound to `dpop_jkt`, with the
PKCE challenge for the first poll and no ping (no notification token can be established at
the authorization endpoint).

The deferred grant then checks the `code_verifier` on the first poll only (`pkce.py`).
"""

from __future__ import annotations

from ..access_requests.filing import AccessRequestFiling, FormInputRequired
from ..authzen.models import requestable_denial
from ..front_door.authorization_code_grant import consented_access
from ..front_door.authorization_request import AuthorizationRequest
from ..front_door.direct_deferral import DeferredAuthorization
from ..front_door.person import Person, subject_for
from ..oauth.access_decision import AccessDecision
from ..oauth.clients import GRANT_AUTHORIZATION_CODE, ClientRegistry
from ..oauth.form import Form
from ..oauth.grants.base import Principal
from ..oauth.pdp_mapping import AskedToken
from ..oauth.requested_access import read_requested_access
from ..rar.profiles import ProfileSet
from .filing import asked_of, file_and_defer
from .models import GRANT_DEFERRED
from .pkce import PKCE_MEMBER
from .service import DeferralService


class DirectDeferral:
    def __init__(
        self,
        deferrals: DeferralService,
        filing: AccessRequestFiling,
        decision: AccessDecision,
        registry: ClientRegistry,
        profiles: ProfileSet,
    ) -> None:
        self._deferrals = deferrals
        self._filing = filing
        self._decision = decision
        self._registry = registry
        self._profiles = profiles

    async def defer(
        self, asked: AuthorizationRequest, person: Person
    ) -> DeferredAuthorization | None:
        client = self._registry.get(asked.client_id)
        if client is None or not client.allows_grant(GRANT_DEFERRED):
            return None  # it could not collect a deferral: a code, and the hint at /token
        if client.auth_method == "none" and asked.dpop_jkt is None:
            return None  # PR #47: a public client's polls must be bound by `dpop_jkt`
        principal = Principal(subject=subject_for(person, asked.client_id), token_sub=person.name)
        access = read_requested_access(
            Form(consented_access(asked)),
            client,
            principal,
            self._profiles,
            max_entries=self._decision.limits.max_authorization_details,
            max_evaluations=self._decision.limits.max_evaluations,
        )
        planned = self._decision.plan(
            AskedToken(GRANT_AUTHORIZATION_CODE, client, principal, access, asked.dpop_jkt)
        )
        decisions = await self._decision.decide(planned)
        denied = [d for d in decisions if not d.decision]
        if not denied or not all(requestable_denial(d) for d in denied):
            return None  # nothing to approve, or nothing an approval could change
        try:
            body = await file_and_defer(
                self._deferrals,
                self._filing,
                self._profiles,
                client=client,
                jkt=asked.dpop_jkt,
                asked=asked_of(GRANT_AUTHORIZATION_CODE, principal, access),
                planned=planned,
                decisions=decisions,
                extra={PKCE_MEMBER: {"code_challenge": asked.code_challenge}},
                ping=False,
            )
        except FormInputRequired:
            return None  # needs a request form nobody filled: a code, and a plain denial
        return DeferredAuthorization(body["deferral_code"], body["expires_in"], body["interval"])
