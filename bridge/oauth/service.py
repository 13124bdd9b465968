"""The OAuth side of the bridge, assembled from settings: endpoints and what they share.

Built synchronously with the app from the parts it shares with the rest (`Shared`); the
app's lifespan opens the store and makes the first signing key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..authzen.pdp import PDP
from ..deferral.service import DeferralService
from ..rar import ProfileSet
from ..settings import Settings
from ..shared import Shared
from .access_request_backend import AccessRequestBackend
from .client_auth import ClientAuthenticator
from .clients import ClientRegistry
from .deferred import DeferredFlow
from .dpop import DPoPVerifier
from .grants.base import Grant
from .grants.client_credentials import ClientCredentialsGrant
from .grants.jwt_bearer import JWTBearerGrant
from .grants.refresh_token import RefreshTokenGrant
from .grants.token_exchange import TokenExchangeGrant
from .introspection import IntrospectionEndpoint
from .issuance import Issuer
from .metadata import (
    INTROSPECTION_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
)
from .revocation import RevocationEndpoint
from .token_endpoint import TokenEndpoint, TokenEndpointConfig

log = logging.getLogger("bridge.oauth")


class OAuthService:
    def __init__(
        self,
        settings: Settings,
        shared: Shared,
        pdp: PDP,
        profiles: ProfileSet,
        *,
        deferrals: DeferralService | None = None,
        access_requests: AccessRequestBackend | None = None,
    ) -> None:
        issuer = settings.issuer
        store = shared.store
        clients_file = settings.resolve(settings.oauth.clients_file)
        if not clients_file.exists():
            log.warning("no client registry at %s: no client can get a token", clients_file)
        self.registry = ClientRegistry.load(clients_file, missing_ok=True)
        self.keys = shared.keys
        self.dpop = DPoPVerifier(
            settings.oauth.dpop,
            store,
            # Derived from the key-encryption key, so replicas sharing it agree on nonces.
            nonce_secret=hmac.new(shared.kek, b"dpop-nonce", hashlib.sha256).digest(),
        )
        authenticator = ClientAuthenticator(
            self.registry, store, issuer, issuer + TOKEN_PATH, shared.http
        )
        grants: dict[str, Grant] = {
            grant.grant_type: grant
            for grant in (
                ClientCredentialsGrant(settings.oauth.client_subject_type),
                TokenExchangeGrant(shared.issuers),
                JWTBearerGrant(shared.issuers, store, {issuer, issuer + TOKEN_PATH}),
                RefreshTokenGrant(store),
            )
        }
        issuance = Issuer(settings, self.keys, store)
        self.deferred = (
            DeferredFlow(deferrals, access_requests, pdp, issuance)
            if deferrals is not None and access_requests is not None
            else None
        )
        max_body = settings.limits.max_body_bytes
        self.token = TokenEndpoint(
            TokenEndpointConfig(
                url=issuer + TOKEN_PATH,
                max_body_bytes=max_body,
                max_authorization_details=settings.oauth.max_authorization_details,
                max_evaluations=settings.limits.max_batch_items,
            ),
            authenticator,
            self.dpop,
            grants,
            profiles,
            pdp,
            issuance,
            self.deferred,
        )
        self.introspection = IntrospectionEndpoint(
            authenticator, self.keys, store, issuer, max_body
        )
        self.revocation = RevocationEndpoint(authenticator, self.keys, store, issuer, max_body)
        self.revocation.deferred = self.deferred
        self.revocation.dpop = self.dpop
        self.revocation.url = issuer + REVOCATION_PATH
        self.metadata = authorization_server_metadata(
            settings, profiles.types, profiles.scope_values, deferred=self.deferred is not None
        )

    def routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self.token.handle, methods=["POST"]),
            Route(INTROSPECTION_PATH, self.introspection.handle, methods=["POST"]),
            Route(REVOCATION_PATH, self.revocation.handle, methods=["POST"]),
            Route(METADATA_PATH, self._metadata, methods=["GET"]),
        ]

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata, headers={"Cache-Control": "max-age=300"})
