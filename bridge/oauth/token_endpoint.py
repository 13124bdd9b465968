"""`POST /token`: a short pipeline of named checks.

read the form → authenticate the client → check the grant type → check the DPoP proof →
run the grant (who is the principal) → read what is asked for (RAR, scope, resource) →
ask the PDP, one batch for everything → issue.

Client authentication, the grant, DPoP and RAR syntax are all checked before the PDP is
asked: a permit never stands in for them. Any denial refuses the whole request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..authzen.errors import PDPError
from ..authzen.models import Decision, EvaluationsSemantic
from ..authzen.pdp import PDP
from ..errors import InvalidScope, OAuthError, ServerError, UnauthorizedClient, UnsupportedGrantType
from ..rar.errors import InvalidAuthorizationDetails
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation, describe_denial
from .client_auth import ClientAuthenticator
from .clients import Client
from .deferred import GRANT_TYPE as DEFERRED_GRANT
from .deferred import DeferredFlow, opted_in, requestable
from .dpop import DPoPProof, DPoPVerifier
from .errors import InvalidDPoPProof
from .form import Form, read_form
from .grants.base import Grant, TokenRequest
from .issuance import Issuer
from .requested_access import read_requested_access
from .responses import NO_STORE, error_response

log = logging.getLogger("bridge.oauth.token")


@dataclass(frozen=True)
class TokenEndpointConfig:
    url: str  # the endpoint's own URL (DPoP `htu`)
    max_body_bytes: int
    max_authorization_details: int
    max_evaluations: int


class TokenEndpoint:
    def __init__(
        self,
        config: TokenEndpointConfig,
        clients: ClientAuthenticator,
        dpop: DPoPVerifier,
        grants: Mapping[str, Grant],
        profiles: ProfileSet,
        pdp: PDP,
        issuer: Issuer,
        deferred: DeferredFlow | None = None,
    ) -> None:
        self._deferred = deferred
        self._config = config
        self._clients = clients
        self._dpop = dpop
        self._grants = grants
        self._profiles = profiles
        self._pdp = pdp
        self._issuer = issuer

    async def handle(self, request: Request) -> Response:
        try:
            body = await self._token(request)
        except OAuthError as error:
            return error_response(error)
        except PDPError as error:
            log.error("no decision for a token request: %s", error)
            return error_response(ServerError("the policy decision point could not decide"))
        except Exception:
            # A bug must still answer in OAuth's words, and never with a token.
            log.exception("token request failed")
            return error_response(ServerError("the token request could not be processed"))
        headers = dict(NO_STORE)
        if self._dpop.requires_nonce:
            # RFC 9449 §8.2: the nonce for the client's next proof rides on this answer.
            headers["DPoP-Nonce"] = self._dpop.fresh_nonce()
        return JSONResponse(body, headers=headers)

    async def _token(self, request: Request) -> dict[str, Any]:
        form = await read_form(request, self._config.max_body_bytes)
        client = await self._clients.authenticate(request.headers, form.as_dict())
        if form.get("grant_type") == DEFERRED_GRANT and self._deferred is not None:
            self._allowed(client, DEFERRED_GRANT)
            return await self._deferred.poll(form, client, await self._proof(request, client))
        grant = self._grant(form, client)
        if self._deferred is not None:
            # Before the proof is required: DTR names its own error for a missing one.
            self._deferred.check_request(form, client, proof_sent="dpop" in request.headers)
        proof = await self._proof(request, client)
        principal = await grant.principal(TokenRequest(form, client, proof))
        access = read_requested_access(
            form,
            client,
            principal,
            self._profiles,
            max_entries=self._config.max_authorization_details,
            max_evaluations=self._config.max_evaluations,
        )
        planned = access.plan(principal, client, proof)
        decisions = await self._decide(planned)
        if not all(d.decision for d in decisions):
            if (
                self._deferred is not None
                and self._may_defer(form, client)
                and all(requestable(d) for d in decisions if not d.decision)
            ):
                await self._deferred.defer(
                    form=form,
                    client=client,
                    proof=proof,
                    grant_type=grant.grant_type,
                    principal=principal,
                    access=access,
                    planned=planned,
                    decisions=decisions,
                )
            raise _refusal(planned, decisions)
        return await self._issuer.issue(
            grant_type=grant.grant_type,
            client=client,
            principal=principal,
            details=access.details,
            scope=access.scope,
            resource=access.resource,
            proof=proof,
        )

    def _grant(self, form: Form, client: Client) -> Grant:
        grant_type = form.require("grant_type")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type} is not supported")
        self._allowed(client, grant_type)
        return grant

    @staticmethod
    def _may_defer(form: Form, client: Client) -> bool:
        """Opted in, and allowed to poll: otherwise a deferral could never be collected."""
        return opted_in(form) and client.allows_grant(DEFERRED_GRANT)

    @staticmethod
    def _allowed(client: Client, grant_type: str) -> None:
        if not client.allows_grant(grant_type):
            raise UnauthorizedClient(f"the client may not use grant_type {grant_type}")

    async def _proof(self, request: Request, client: Client) -> DPoPProof | None:
        headers = request.headers.getlist("dpop")
        if len(headers) > 1:
            raise InvalidDPoPProof("more than one DPoP header")
        proof = await self._dpop.verify(
            headers[0] if headers else None, method="POST", url=self._config.url
        )
        if proof is None and client.require_dpop:
            raise InvalidDPoPProof("this client must send a DPoP proof")
        return proof

    async def _decide(self, planned: list[PlannedEvaluation]) -> list[Decision]:
        """One batch for everything asked; an item the PDP failed on means no decision."""
        decisions = await self._pdp.evaluations(
            [p.request for p in planned], EvaluationsSemantic.execute_all
        )
        for item, decision in zip(planned, decisions, strict=True):
            if decision.context is not None and "error" in decision.context:
                # The PDP failed on this item: no decision, which is not a denial.
                raise PDPError(f"no decision for {describe_denial(item)}")
        return decisions


def _refusal(planned: list[PlannedEvaluation], decisions: list[Decision]) -> OAuthError:
    """The error for the first denial; a requestable one says how to ask for approval."""
    item, decision = next((p, d) for p, d in zip(planned, decisions, strict=True) if not d.decision)
    description = describe_denial(item)
    if requestable(decision):
        description += "; it can be approved: retry with completion_mode=deferred"
    if item.source == "scope":
        return InvalidScope(description)
    return InvalidAuthorizationDetails(description)
