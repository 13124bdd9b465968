"""`POST /token`: a short pipeline of named checks.

read the form → authenticate the client → pick the grant (may the client use it?) → keep
the parameters the grant and the extensions declared → the extensions' checks → check the
DPoP proof → run the grant.

Every grant is one module with the same shape (`grants.base.Grant`); the endpoint knows
none of them by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from ..authzen.errors import PDPError
from ..errors import (
    InvalidRequest,
    OAuthError,
    ServerError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from ..metrics import TOKEN_REQUESTS
from .client_auth import CLIENT_AUTH_PARAMETERS, ClientAuthenticator
from .clients import Client
from .dpop import DPoPProof, DPoPVerifier
from .extensions import TokenExtension
from .form import Form, read_form
from .grants.base import Grant, TokenRequest
from .responses import error_response, json_response

log = logging.getLogger("bridge.oauth.token")


@dataclass(frozen=True)
class TokenEndpointConfig:
    url: str  # the endpoint's own URL (DPoP `htu`)
    max_body_bytes: int


class TokenEndpoint:
    def __init__(
        self,
        config: TokenEndpointConfig,
        clients: ClientAuthenticator,
        dpop: DPoPVerifier,
        grants: Mapping[str, Grant],
        extensions: Sequence[TokenExtension],
    ) -> None:
        self._config = config
        self._clients = clients
        self._dpop = dpop
        self._grants = grants  # the assembly's own mapping: later installs count
        self._extensions = extensions
        self._issued: dict[str, Counter] = {}  # grant type → its `issued` counter

    async def handle(self, request: Request) -> Response:
        # The grant type as a metric label once it is one the bridge serves (bounded values).
        request.state.grant_type = "unknown"
        try:
            body = await self._token(request)
        except OAuthError as error:
            return self._refused(request, error)
        except PDPError as error:
            log.error("no decision for a token request: %s", error)
            return self._refused(request, ServerError("the policy decision point could not decide"))
        except Exception:
            # A bug must still answer in OAuth's words, and never with a token.
            log.exception("token request failed")
            return self._refused(request, ServerError("the token request could not be processed"))
        issued = self._issued.get(request.state.grant_type)
        if issued is None:  # one counter per grant type the bridge serves: a bounded cache
            issued = self._issued[request.state.grant_type] = TOKEN_REQUESTS.labels(
                request.state.grant_type, "issued"
            )
        issued.inc()
        # RFC 9449 §8.2: the nonce for the client's next proof rides on this answer.
        nonce = {"DPoP-Nonce": self._dpop.fresh_nonce()} if self._dpop.requires_nonce else None
        return json_response(body, nonce)

    @staticmethod
    def _refused(request: Request, error: OAuthError) -> Response:
        TOKEN_REQUESTS.labels(request.state.grant_type, error.error).inc()
        return error_response(error)

    async def _token(self, request: Request) -> dict[str, object]:
        form = await read_form(request, self._config.max_body_bytes)
        client = await self._clients.authenticate(request.headers, form.as_dict())
        grant = self._grant(form, client)
        request.state.grant_type = grant.grant_type
        declared = self._declared(form, grant)
        extensions = self._extensions if grant.extensible else ()
        for extension in extensions:
            # Before the proof is required: an extension may name its own error for a
            # missing one.
            extension.check(
                TokenRequest(declared, client, None), proof_sent="dpop" in request.headers
            )
        proof = await self._proof(request, client)
        return await grant.token(TokenRequest(declared, client, proof))

    def _grant(self, form: Form, client: Client) -> Grant:
        grant_type = form.require("grant_type")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type} is not supported")
        if not client.allows_grant(grant_type):
            raise UnauthorizedClient(f"the client may not use grant_type {grant_type}")
        return grant

    def _declared(self, form: Form, grant: Grant) -> Form:
        """The form with only what the grant and its extensions read (and client
        authentication's); a parameter the grant refuses is an error."""
        refused = [name for name in grant.refused if name in form]
        if refused:
            name = min(refused)  # the same one whatever the set's order
            raise InvalidRequest(f"{name} is not allowed with grant_type {grant.grant_type}")
        keep = grant.parameters | CLIENT_AUTH_PARAMETERS | {"grant_type"}
        if grant.extensible:
            for extension in self._extensions:
                keep = keep | extension.parameters
        return form.only(keep)

    async def _proof(self, request: Request, client: Client) -> DPoPProof | None:
        return await self._dpop.verify_sent(
            request.headers.getlist("dpop"),
            method="POST",
            url=self._config.url,
            required=client.require_dpop,
        )
