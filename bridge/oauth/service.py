"""The OAuth side of the bridge, assembled from settings: endpoints and what they share.

Built synchronously with the app; `start()` (in the app's lifespan) opens what needs I/O:
the store is opened by the app, signing keys are made on first start here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..authzen.pdp import PDP
from ..rar import ProfileSet
from ..settings import Settings
from ..store.base import Store
from .client_auth import ClientAuthenticator
from .clients import ClientRegistry
from .dpop import DPoPVerifier
from .grants.base import Grant
from .grants.client_credentials import ClientCredentialsGrant
from .grants.jwt_bearer import JWTBearerGrant
from .grants.refresh_token import RefreshTokenGrant
from .grants.token_exchange import TokenExchangeGrant
from .introspection import IntrospectionEndpoint
from .issuance import Issuer
from .keys import SigningKeys, load_or_create_kek
from .metadata import (
    INTROSPECTION_PATH,
    JWKS_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
)
from .revocation import RevocationEndpoint
from .token_endpoint import TokenEndpoint, TokenEndpointConfig
from .trusted_issuers import TrustedIssuers

log = logging.getLogger("bridge.oauth")


class OAuthService:
    def __init__(self, settings: Settings, store: Store, pdp: PDP, profiles: ProfileSet) -> None:
        issuer = settings.issuer
        kek = load_or_create_kek(settings.resolve(settings.oauth.key_encryption_key_file))
        clients_file = settings.resolve(settings.oauth.clients_file)
        if not clients_file.exists():
            log.warning("no client registry at %s: no client can get a token", clients_file)
        self.registry = ClientRegistry.load(clients_file, missing_ok=True)
        self.http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self.keys = SigningKeys(store, kek, settings.oauth.signing_alg)
        self.dpop = DPoPVerifier(
            settings.oauth.dpop,
            store,
            # Derived from the key-encryption key, so replicas sharing it agree on nonces.
            nonce_secret=hmac.new(kek, b"dpop-nonce", hashlib.sha256).digest(),
        )
        authenticator = ClientAuthenticator(
            self.registry, store, issuer, issuer + TOKEN_PATH, self.http
        )
        issuers = TrustedIssuers(settings.oauth.trusted_issuers, issuer, self.http)
        grants: dict[str, Grant] = {
            grant.grant_type: grant
            for grant in (
                ClientCredentialsGrant(settings.oauth.client_subject_type),
                TokenExchangeGrant(issuers),
                JWTBearerGrant(issuers, store, {issuer, issuer + TOKEN_PATH}),
                RefreshTokenGrant(store),
            )
        }
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
            Issuer(settings, self.keys, store),
        )
        self.introspection = IntrospectionEndpoint(
            authenticator, self.keys, store, issuer, max_body
        )
        self.revocation = RevocationEndpoint(authenticator, self.keys, store, issuer, max_body)
        self.metadata = authorization_server_metadata(
            settings, profiles.types, profiles.scope_values
        )

    async def start(self) -> None:
        await self.keys.ensure()

    async def stop(self) -> None:
        await self.http.aclose()

    def routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self.token.handle, methods=["POST"]),
            Route(INTROSPECTION_PATH, self.introspection.handle, methods=["POST"]),
            Route(REVOCATION_PATH, self.revocation.handle, methods=["POST"]),
            Route(METADATA_PATH, self._metadata, methods=["GET"]),
            Route(JWKS_PATH, self._jwks, methods=["GET"]),
        ]

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata, headers={"Cache-Control": "max-age=300"})

    async def _jwks(self, request: Request) -> Response:
        body: dict[str, Any] = await self.keys.jwks()
        # Short: a rotation must reach resource servers quickly.
        return JSONResponse(body, headers={"Cache-Control": "max-age=60"})
