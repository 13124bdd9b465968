"""The OAuth part, assembled from settings: the token, introspection, revocation and metadata
endpoints and what they share.

    oauth = OAuth(settings, store, keys, kek, http, issuers, pdp, profiles)
    oauth.install(extension, grants=[...])     # e.g. the Deferred Token Response
    oauth.obligations.register(handler)        # e.g. the front door's step-up
    routes += oauth.routes()

Built synchronously with the app; the app's lifespan opens the store and makes the first
signing key. Other parts reach the OAuth internals they build on through the attributes
(`issuer` mints tokens, `dpop` checks proofs, `registry` knows the clients).
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
from ..jose.signing_keys import SigningKeys
from ..jose.trusted_issuers import TrustedIssuers
from ..rar import ProfileSet
from ..settings import Settings
from ..store.contract import Store
from .access_decision import AccessDecision, DecisionLimits
from .authorization_claims import REGISTERED_BINDINGS, AuthorizationClaims, ClaimBinding
from .client_auth import ClientAuthenticator
from .clients import ClientRegistry
from .dpop import DPoPVerifier
from .extensions import TokenExtension
from .grants.base import Grant, PrincipalGrant
from .grants.client_credentials import ClientCredentialsGrant
from .grants.jwt_bearer import JWTBearerGrant
from .grants.refresh_token import RefreshTokenGrant
from .grants.token_exchange import TokenExchangeGrant
from .introspection import IntrospectionEndpoint
from .introspection_checks import IntrospectionCheck
from .issuance import Issuer
from .issuance_mapping import TokenIssuanceMapping
from .metadata import (
    INTROSPECTION_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
)
from .obligations import Obligations, load_handlers
from .pdp_mapping import AccessRequestMapping, TokenRequestMapping
from .registry_checks import client_problems
from .revocation import RevocationEndpoint
from .token_endpoint import TokenEndpoint, TokenEndpointConfig
from .token_management import TokenManagementEndpoint

log = logging.getLogger("bridge.oauth")


class OAuth:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: SigningKeys,
        kek: bytes,
        http: httpx.AsyncClient,
        issuers: TrustedIssuers,
        pdp: PDP,
        profiles: ProfileSet,
    ) -> None:
        issuer = settings.issuer
        self.settings = settings
        self.profiles = profiles
        clients_file = settings.resolve(settings.oauth.clients_file)
        if not clients_file.exists():
            log.warning("no client registry at %s: no client can get a token", clients_file)
        self.registry = ClientRegistry.load(clients_file, missing_ok=True)
        # A new version of the file is taken only if a fresh start would take it too.
        self.registry.check = lambda clients: client_problems(clients, profiles, str(clients_file))
        self.keys = keys
        self.dpop = DPoPVerifier(
            settings.oauth.dpop,
            store,
            # Derived from the key-encryption key, so replicas sharing it agree on nonces.
            nonce_secret=hmac.new(kek, b"dpop-nonce", hashlib.sha256).digest(),
        )
        self.authenticator = ClientAuthenticator(
            self.registry, store, issuer, issuer + TOKEN_PATH, http
        )
        self.issuer = Issuer(settings, keys, store)
        self.extensions: list[TokenExtension] = []
        self.grants: dict[str, Grant] = {}
        # Who carries out the PDP's obligations: the deployment's handlers now, the parts'
        # as they are assembled; published in the metadata (`supported_obligations`).
        self.obligations = Obligations()
        self.obligations.register(*load_handlers(settings.oauth.obligation_handlers))
        self.extensions.append(self.obligations)
        self.decision = AccessDecision(
            profiles,
            pdp,
            self.issuer,
            DecisionLimits(
                max_authorization_details=settings.oauth.max_authorization_details,
                max_evaluations=settings.limits.max_batch_items,
            ),
            self.extensions,
            mapping_for(settings, profiles),
            obligations=self.obligations,
            claims=AuthorizationClaims(pdp, claim_bindings(settings)),
        )
        self.add_grants(
            ClientCredentialsGrant(settings.oauth.client_subject_type),
            TokenExchangeGrant(issuers),
            JWTBearerGrant(issuers, store, {issuer, issuer + TOKEN_PATH}),
            RefreshTokenGrant(store),
        )
        max_body = settings.limits.max_body_bytes
        self.token = TokenEndpoint(
            TokenEndpointConfig(url=issuer + TOKEN_PATH, max_body_bytes=max_body),
            self.authenticator,
            self.dpop,
            self.grants,
            self.extensions,
        )
        management = TokenManagementEndpoint(self.authenticator, keys, store, issuer, max_body)
        self.introspection = IntrospectionEndpoint(
            management.clients, keys, store, issuer, max_body
        )
        self.introspection_checks: list[IntrospectionCheck] = []
        self.introspection.checks = self.introspection_checks
        self.revocation = RevocationEndpoint(
            management, issuer + REVOCATION_PATH, self.dpop, self.extensions
        )

    def add_grants(self, *grants: Grant) -> None:
        """Serve these grant types at the token endpoint; a grant that names a principal
        has its access decided by this part's `AccessDecision`."""
        for grant in grants:
            if isinstance(grant, PrincipalGrant):
                grant.decider = self.decision
            self.grants[grant.grant_type] = grant

    def install(self, extension: TokenExtension, *, grants: tuple[Grant, ...] = ()) -> None:
        """Add an extension to every extensible grant, revocation and metadata, with the
        grants it brings."""
        self.extensions.append(extension)
        self.add_grants(*grants)

    def install_introspection_check(self, check: IntrospectionCheck) -> None:
        """Ask `check` too whether an access token is active at introspection."""
        self.introspection_checks.append(check)

    def metadata(self) -> dict[str, Any]:
        return authorization_server_metadata(
            self.settings,
            self.profiles.types,
            self.profiles.scope_values,
            self.grants,
            self.extensions,
        )

    def routes(self) -> list[Route]:
        metadata = self.metadata()

        async def serve_metadata(request: Request) -> Response:
            return JSONResponse(metadata, headers={"Cache-Control": "max-age=300"})

        return [
            Route(TOKEN_PATH, self.token.handle, methods=["POST"]),
            Route(INTROSPECTION_PATH, self.introspection.handle, methods=["POST"]),
            Route(REVOCATION_PATH, self.revocation.handle, methods=["POST"]),
            Route(METADATA_PATH, serve_metadata, methods=["GET"]),
        ]


def claim_bindings(settings: Settings) -> list[ClaimBinding]:
    """`pdp.authorization_claims`, the registered bindings filling what is not given."""
    bindings = []
    for claim, options in settings.pdp.authorization_claims.items():
        resource_type, action = REGISTERED_BINDINGS.get(claim, (None, None))
        resource_type = options.resource_type or resource_type
        action = options.action or action
        assert resource_type is not None and action is not None  # checked when read
        bindings.append(ClaimBinding(claim, resource_type, action, options.on_failure))
    return bindings


def mapping_for(settings: Settings, profiles: ProfileSet) -> TokenRequestMapping:
    """The mapping `pdp.mapping` names (docs/pdp-mappings.md)."""
    if settings.pdp.mapping == "token_issuance":
        return TokenIssuanceMapping(
            profiles,
            issuer=settings.issuer,
            client_subject_type=settings.oauth.client_subject_type,
            max_evaluations=settings.limits.max_batch_items,
            token_claims=frozenset(settings.pdp.token_claims),
        )
    return AccessRequestMapping()
