"""`POST /par`, pushed authorization requests (RFC 9126 §2): a short pipeline.

read the form → authenticate the client (as at the token endpoint, §2) → no `request_uri`
inside (§2.1) → the redirect URI, registered exactly → the same checks as `/authorize` → a
DPoP proof, if sent, binds the request to its key (RFC 9449 §10.1) → store it once → 201
with `request_uri` and `expires_in`. Errors are OAuth JSON (§2.3).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import InvalidRequest, OAuthError, ServerError
from ..oauth.client_auth import ClientAuthenticator
from ..oauth.dpop import DPoPVerifier
from ..oauth.errors import InvalidDPoPProof
from ..oauth.form import read_form
from ..oauth.responses import NO_STORE, error_response
from ..rar.profiles import ProfileSet
from ..store.contract import AuthorizationRequestStore
from .authorization_request import AuthorizationRequest, read_authorization_request
from .authorize_endpoint import FrontDoorConfig
from .metadata import PAR_PATH
from .pushed_requests import push

log = logging.getLogger("bridge.front_door.par")


class PAREndpoint:
    def __init__(
        self,
        config: FrontDoorConfig,
        clients: ClientAuthenticator,
        dpop: DPoPVerifier,
        profiles: ProfileSet,
        store: AuthorizationRequestStore,
    ) -> None:
        self._config = config
        self._clients = clients
        self._dpop = dpop
        self._profiles = profiles
        self._store = store

    async def handle(self, request: Request) -> Response:
        try:
            body = await self._push(request)
        except OAuthError as error:
            return error_response(error)
        except Exception:
            log.exception("pushed authorization request failed")
            return error_response(ServerError("the request could not be processed"))
        return JSONResponse(body, status_code=201, headers=dict(NO_STORE))

    async def _push(self, request: Request) -> dict[str, object]:
        form = await read_form(request, self._config.max_body_bytes)
        client = await self._clients.authenticate(request.headers, form.as_dict())
        if "request_uri" in form:
            raise InvalidRequest("request_uri cannot be pushed (RFC 9126 §2.1)")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None:
            raise InvalidRequest("redirect_uri is required")
        if redirect_uri not in client.redirect_uris:
            raise InvalidRequest("redirect_uri is not registered for this client")
        asked = read_authorization_request(
            form,
            client,
            redirect_uri,
            self._profiles,
            max_entries=self._config.max_authorization_details,
            max_evaluations=self._config.max_evaluations,
        )
        asked = await self._bound_to_proof(request, asked)
        lifetime = self._config.request_uri_lifetime
        request_uri = await push(self._store, asked, lifetime)
        return {"request_uri": request_uri, "expires_in": int(lifetime)}

    async def _bound_to_proof(
        self, request: Request, asked: AuthorizationRequest
    ) -> AuthorizationRequest:
        proof = await self._dpop.verify_sent(
            request.headers.getlist("dpop"), method="POST", url=self._config.issuer + PAR_PATH
        )
        if proof is None:
            return asked
        if asked.dpop_jkt is not None and asked.dpop_jkt != proof.jkt:
            raise InvalidDPoPProof("dpop_jkt is not the key of the DPoP proof")
        return AuthorizationRequest(**{**asked.as_json(), "dpop_jkt": proof.jkt})
