"""The front door, assembled from settings and installed into the OAuth part:

    front_door = FrontDoor(settings, store, oauth, kek, http)   # installs the code grant
    routes += front_door.routes()

Its state is all in the store (pushed requests, interactions, codes, throttle counts) or in
the signed (and, for a sign-in at the provider, sealed) cookies, so replicas sharing the
store and the key-encryption key serve any step.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
from starlette.routing import BaseRoute, Route

from ..housekeeping import Chore
from ..oauth.assembly import OAuth
from ..settings import Settings
from ..store.contract import Store
from ..web.pages import Pages
from .authorization_code_grant import AuthorizationCodeGrant
from .authorize_endpoint import AuthorizeEndpoint, FrontDoorConfig
from .consent import ConsentView
from .direct_deferral import AuthorizationDeferral
from .interaction import Interactions
from .metadata import AUTHORIZE_PATH, PAR_PATH, FrontDoorMetadata
from .par_endpoint import PAREndpoint
from .pending_sign_in import PendingSignIns
from .sessions import Sessions
from .sign_in import CALLBACK_PATH, SignIn
from .sign_in_methods import SignInMethods
from .step_up import StepUpHandler

# Expired requests, codes and throttle windows go every this many housekeeping passes.
PURGE_EVERY_PASSES = 12


class FrontDoor:
    def __init__(
        self, settings: Settings, store: Store, oauth: OAuth, kek: bytes, http: httpx.AsyncClient
    ) -> None:
        options = settings.front_door
        issuer = settings.issuer
        require_pushed = options.require_pushed_authorization_requests
        self.config = FrontDoorConfig(
            issuer=issuer,
            max_body_bytes=settings.limits.max_body_bytes,
            max_authorization_details=settings.oauth.max_authorization_details,
            max_evaluations=settings.limits.max_batch_items,
            require_pushed_requests=require_pushed,
            request_uri_lifetime=options.request_uri_lifetime_seconds,
            interaction_lifetime=options.interaction_lifetime_seconds,
            code_lifetime=options.code_lifetime_seconds,
        )
        self._store = store
        self.pages = Pages()
        self.sessions = Sessions(
            # Derived from the key-encryption key: every replica verifies every cookie.
            hmac.new(kek, b"front-door-session", hashlib.sha256).digest(),
            store,
            secure=settings.server.public_url.startswith("https://"),
            session_lifetime=options.session_lifetime_seconds,
            state_lifetime=options.interaction_lifetime_seconds,
        )
        upstream = options.upstream_signin
        # The ways people sign in; CIBA looks its login hints up in the same accounts.
        self.methods = SignInMethods.configured(settings, store, http)
        self.sign_in = SignIn(
            settings,
            store,
            self.sessions,
            self.pages,
            self.methods,
            PendingSignIns(
                kek,
                store,
                secure=self.sessions.secure,
                lifetime=upstream.pending_lifetime_seconds if upstream else 0,
            ),
        )
        consent = ConsentView(
            oauth.profiles, oauth.decision, settings.limits.max_batch_items, oauth.registry
        )
        self.authorize = AuthorizeEndpoint(
            self.config, oauth.registry, oauth.profiles, store, self.sessions, self.pages
        )
        self.par = PAREndpoint(self.config, oauth.authenticator, oauth.dpop, oauth.profiles, store)
        self.interactions = Interactions(
            self.config,
            store,
            oauth.registry,
            self.sessions,
            self.pages,
            self.sign_in,
            consent,
        )
        self.direct_deferral = options.direct_deferral
        oauth.install(
            FrontDoorMetadata(issuer, require_pushed, direct_deferral=self.direct_deferral),
            grants=(AuthorizationCodeGrant(store),),
        )
        # A PDP's step-up obligation: the person signs in again (RFC 9470).
        oauth.obligations.register(
            StepUpHandler(local_accounts=options.local_accounts, upstream=upstream is not None)
        )

    def install_deferral(self, deferral: AuthorizationDeferral) -> None:
        """The deferral part's direct deferral, used at consent when the deployment allows
        it (`front_door.direct_deferral`)."""
        if self.direct_deferral:
            self.interactions.direct_deferral = deferral

    def routes(self) -> list[BaseRoute]:
        i = self.interactions
        sign_in = self.sign_in
        return [
            Route(AUTHORIZE_PATH, self.authorize.handle, methods=["GET", "POST"]),
            Route(PAR_PATH, self.par.handle, methods=["POST"]),
            Route("/interaction/{uid}", i.show, methods=["GET"]),
            Route("/interaction/{uid}/sign-in", i.sign_in, methods=["POST"]),
            Route("/interaction/{uid}/sign-in/upstream", i.sign_in_upstream, methods=["POST"]),
            Route("/interaction/{uid}/consent", i.decide, methods=["POST"]),
            Route("/sign-out", i.sign_out, methods=["POST"]),
            Route("/signed-in", i.signed_in, methods=["GET"]),
            Route("/sign-in", sign_in.show, methods=["GET"]),
            Route("/sign-in", sign_in.post_password, methods=["POST"]),
            Route("/sign-in/upstream", sign_in.post_upstream, methods=["POST"]),
            Route(CALLBACK_PATH, sign_in.callback, methods=["GET"]),
            *self.pages.routes(),
        ]

    def chores(self) -> list[Chore]:
        async def purge() -> None:
            await self._store.purge_front_door(time.time())

        return [Chore("purge the front door", purge, every_passes=PURGE_EVERY_PASSES)]
