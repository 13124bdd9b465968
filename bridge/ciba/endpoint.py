"""`POST /bc-authorize`: the backchannel authentication endpoint (OpenID CIBA Core 1.0 §7),
a short pipeline of named checks.

read the form → authenticate the client (§7.1: always; a public client is refused) → may it
use the CIBA grant → read the request (`request.read_backchannel_request`: `openid`, the
hint, the binding message, the expiry, the notification token) → the user the hint names
(`unknown_user_id`) → the DPoP proof (it binds the `auth_req_id` and the token, AROP §12) →
what is asked, decided for her with the client acting (AROP §8.2, as the authorization code
grant decides: `front_door.person.subject_for`) → a plain denial is refused as the token
endpoint refuses it (`invalid_authorization_details` / `invalid_scope`, AROP §7.1) → the same
request again while it waits: the same `auth_req_id` (AROP §7.2) → else file the access
request when policy's denial is requestable, store the deferral (its code is the
`auth_req_id`) and her request, tell her → 200 `auth_req_id`, `expires_in`, `interval` (§7.3).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..access_requests.filing import AccessRequestFiling, FormInputRequired
from ..authzen.errors import PDPError
from ..authzen.models import Decision, requestable_denial
from ..deferral.filing import asked_of, file_and_defer
from ..deferral.service import DeferralService
from ..errors import InvalidClient, OAuthError, ServerError, UnauthorizedClient
from ..front_door.person import Person, subject_for
from ..oauth.access_decision import AccessDecision
from ..oauth.client_auth import ClientAuthenticator
from ..oauth.clients import GRANT_CIBA, Client
from ..oauth.dpop import DPoPProof, DPoPVerifier
from ..oauth.errors import InvalidTarget
from ..oauth.form import read_form
from ..oauth.grants.base import Principal
from ..oauth.pdp_mapping import AskedToken
from ..oauth.requested_access import RequestedAccess, read_asked_access
from ..oauth.responses import error_response, json_response
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation, refusal
from .grant import AUTH_REQ_ID
from .request import (
    BackchannelRequest,
    binding_message_of,
    ciba_identity,
    read_backchannel_request,
)
from .user_request import UserRequests
from .users import KnownUsers

log = logging.getLogger("bridge.ciba")

BACKCHANNEL_PATH = "/bc-authorize"


@dataclass(frozen=True)
class BackchannelConfig:
    url: str  # the endpoint's own URL (DPoP `htu`)
    max_body_bytes: int
    default_expiry: int
    max_expiry: int


@dataclass(frozen=True)
class _Waiting:
    """A request that is allowed to wait: what the steps after the decision share."""

    client: Client
    person: Person
    principal: Principal
    asked: BackchannelRequest
    access: RequestedAccess
    planned: Sequence[PlannedEvaluation]
    decisions: Sequence[Decision]
    jkt: str | None

    @property
    def snapshot(self) -> dict[str, Any]:
        """The request part of its deferral's snapshot (`deferral.filing.asked_of`)."""
        return asked_of(GRANT_CIBA, self.principal, self.access)


class BackchannelEndpoint:
    def __init__(
        self,
        config: BackchannelConfig,
        clients: ClientAuthenticator,
        dpop: DPoPVerifier,
        decision: AccessDecision,
        users: KnownUsers,
        deferrals: DeferralService,
        filing: AccessRequestFiling,
        requests: UserRequests,
        profiles: ProfileSet,
    ) -> None:
        self._config = config
        self._clients = clients
        self._dpop = dpop
        self._decision = decision
        self._users = users
        self._deferrals = deferrals
        self._filing = filing
        self._requests = requests
        self._profiles = profiles

    async def handle(self, request: Request) -> Response:
        try:
            body = await self._authenticate_request(request)
        except OAuthError as error:
            return error_response(error)
        except PDPError as error:
            log.error("no decision for a backchannel request: %s", error)
            return error_response(ServerError("the policy decision point could not decide"))
        except Exception:
            log.exception("backchannel authentication request failed")
            return error_response(ServerError("the request could not be processed"))
        headers = {"DPoP-Nonce": self._dpop.fresh_nonce()} if self._dpop.requires_nonce else {}
        return json_response(body, headers)

    async def _authenticate_request(self, request: Request) -> dict[str, Any]:
        form = await read_form(request, self._config.max_body_bytes)
        client = await self._clients.authenticate(request.headers, form.as_dict())
        _check_client(client)
        asked = read_backchannel_request(form, client)
        person = self._users.person(asked.login_hint)
        proof = await self._proof(request, client)
        principal = Principal(
            subject=subject_for(person, client.client_id),
            token_sub=person.name,
            act={"sub": client.client_id},
        )
        limits = self._decision.limits
        access = read_asked_access(
            asked.access,
            client,
            self._profiles,
            max_entries=limits.max_authorization_details,
            max_evaluations=limits.max_evaluations,
            principal=principal,
        )
        jkt = proof.jkt if proof is not None else None
        # Under the deployment's mapping (the token issuance profile's gate included); a CIBA
        # request stays all or nothing, as every request that waits for approvers does.
        planned = self._decision.plan(AskedToken(GRANT_CIBA, client, principal, access, jkt))
        decisions = await self._decision.decide(planned)
        _refuse_denials(planned, decisions)
        waiting = _Waiting(client, person, principal, asked, access, planned, decisions, jkt)
        key, again = await self._asked_before(waiting)
        return _acknowledgement(again or await self._defer(waiting, key))

    async def _asked_before(self, waiting: _Waiting) -> tuple[str | None, dict[str, Any] | None]:
        """(the request's dedupe key, the pending deferral of the same request if any)."""
        client, jkt, binding = waiting.client, waiting.jkt, waiting.asked.binding_message
        identity = ciba_identity(client.client_id, jkt, waiting.snapshot, binding)
        if identity is None:
            return None, None
        key = self._deferrals.request_key(identity)

        def same(stored: dict[str, Any]) -> bool:
            found = ciba_identity(client.client_id, jkt, stored, binding_message_of(stored))
            return found == identity

        again = await self._deferrals.repeat(client, jkt, key, same)
        if again is not None:
            log.info("%s asked again: the same auth_req_id", client.client_id)
        return key, again

    async def _defer(self, waiting: _Waiting, key: str | None) -> dict[str, Any]:
        """File the access request (when a denial is requestable), store the deferral, and
        her request with its notice."""
        client, asked = waiting.client, waiting.asked
        request_id = secrets.token_urlsafe(24)
        try:
            body = await file_and_defer(
                self._deferrals,
                self._filing,
                self._profiles,
                client=client,
                jkt=waiting.jkt,
                asked=waiting.snapshot,
                planned=waiting.planned,
                decisions=waiting.decisions,
                notification_token=asked.notification_token,
                dedupe_key=key,
                extra=self._requests.snapshot_members(request_id, asked.binding_message),
                ping=asked.ping,
                notification_endpoint=client.backchannel_client_notification_endpoint,
                max_lifetime=self._lifetime(asked),
            )
        except FormInputRequired:
            # Requestable only with a request form she cannot fill here: nothing was filed,
            # and the denial is refused as a plain one, as the token endpoint does.
            _refuse_denials(waiting.planned, waiting.decisions, requestable_too=True)
            raise
        await self._requests.store(
            request_id,
            code_hash=self._deferrals.code_hash(body["deferral_code"]),
            client=client,
            person=waiting.person,
            asked=asked,
            details=waiting.access.details,
            planned=waiting.planned,
        )
        return body

    def _lifetime(self, asked: BackchannelRequest) -> int:
        wanted = asked.requested_expiry or self._config.default_expiry
        return min(wanted, self._config.max_expiry)

    async def _proof(self, request: Request, client: Client) -> DPoPProof | None:
        return await self._dpop.verify_sent(
            request.headers.getlist("dpop"),
            method="POST",
            url=self._config.url,
            required=client.require_dpop,
        )


def _check_client(client: Client) -> None:
    if client.is_public:
        # CIBA Core §7.1: "The Client MUST authenticate to the Backchannel Authentication
        # Endpoint using the authentication method registered for its client_id".
        raise InvalidClient("the backchannel authentication endpoint needs client authentication")
    if not client.allows_grant(GRANT_CIBA):
        # CIBA Core §13: "The Client is not authorized to use this authentication flow."
        raise UnauthorizedClient(f"the client may not use {GRANT_CIBA}")


def _refuse_denials(
    planned: Sequence[PlannedEvaluation],
    decisions: Sequence[Decision],
    *,
    requestable_too: bool = False,
) -> None:
    """AROP §7.1: something policy denies and no approval could change (or, with
    `requestable_too`, that no access request could be filed for) is refused at once, in
    the token endpoint's words for it."""
    for item, decision in zip(planned, decisions, strict=True):
        if not decision.decision and (requestable_too or not requestable_denial(decision)):
            if item.source == "gate":
                # The token issuance profile's gate (§8): no token for that target at all.
                raise InvalidTarget(f"no token may be issued for {item.target}")
            raise refusal(item)


def _acknowledgement(body: Mapping[str, Any]) -> dict[str, Any]:
    """CIBA Core §7.3, from a deferred response's body: the code is the `auth_req_id`."""
    return {
        AUTH_REQ_ID: body["deferral_code"],
        "expires_in": math.floor(body["expires_in"]),
        "interval": body["interval"],
    }
