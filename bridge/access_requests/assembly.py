"""Everything `app.py` needs from the access request service, built from settings.

    ars = AccessRequests(settings, store, oauth.keys, deciders, issuers)
    pdp = ars.decision_point(cedar_pdp, endpoints.pdp_id)     # per embedded store
    routes += ars.routes(settings.stores["default"].auth)
    handlers = ars.outbox_handlers()                          # {"arap_callback": ...}
    metadata = ars.metadata(endpoints.metadata())             # per store
    await ars.service.sweep()                                 # now and then

`deciders` maps each embedded store's PDP identifier (`StoreEndpoints.pdp_id`) to its
*inner* Cedar PDP: approver decisions must not be turned into requestable denials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from starlette.routing import Route

from ..authzen.pdp import PDP
from ..jose.signing_keys import SigningKeys
from ..jose.trusted_issuers import TrustedIssuers
from ..oauth.metadata import JWKS_PATH
from ..outbox import Handler
from ..settings import PEPAuthSettings, Settings
from ..store.contract import TaskStore
from .auth import ApproverAuthenticator, RequesterAuthenticator
from .binding_token import BindingTokens
from .callbacks import KIND as CALLBACK_KIND
from .callbacks import CallbackSender
from .metadata import with_access_requests
from .pdp import ARAPDecisionPoint
from .routes import API_PATH, access_request_routes
from .service import AccessRequestService
from .tasks import TaskURLs


class AccessRequests:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        keys: SigningKeys,
        deciders: Mapping[str, PDP],
        issuers: TrustedIssuers,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options = settings.access_requests
        self.public_url = settings.server.public_url.rstrip("/")
        self.endpoint = self.public_url + API_PATH + "/requests"
        self.jwks_uri = settings.issuer + JWKS_PATH
        self.settings = settings
        self.store = store
        self.clock = clock
        self.urls = TaskURLs(self.endpoint, self.public_url + API_PATH + "/approvals")
        self.tokens = BindingTokens(keys, settings.issuer, self.endpoint, clock)
        self.service = AccessRequestService(
            store,
            self.tokens,
            deciders,
            options,
            self.urls,
            max_items=settings.limits.max_batch_items,
            clock=clock,
        )
        self.approvers = ApproverAuthenticator(
            issuers,
            options.approver_issuer,
            options.approver_audience or settings.issuer,
            realm=self.public_url,
        )
        self.callbacks = CallbackSender(
            store,
            keys,
            settings.issuer,
            self.urls,
            allow_private=options.allow_private_callbacks,
            clock=clock,
        )

    def decision_point(self, inner: PDP, pdp_id: str) -> ARAPDecisionPoint:
        """The PDP a store's AuthZEN API and the token endpoint use."""
        options = self.settings.access_requests
        return ARAPDecisionPoint(
            inner,
            pdp_id=pdp_id,
            approvals=self.store,
            tokens=self.tokens,
            endpoint=self.endpoint,
            binding_context_members=options.binding_context_members,
            denial_lifetime_seconds=options.denial_lifetime_seconds,
            requestable_denials=options.approver_issuer is not None,
            clock=self.clock,
        )

    def routes(self, requester_auth: PEPAuthSettings) -> list[Route]:
        requesters = RequesterAuthenticator(requester_auth, realm=self.public_url)
        return access_request_routes(
            self.service,
            requesters,
            self.approvers,
            max_body_bytes=self.settings.limits.max_body_bytes,
        )

    def outbox_handlers(self) -> dict[str, Handler]:
        return {CALLBACK_KIND: self.callbacks}

    def metadata(self, base: dict[str, object]) -> dict[str, object]:
        return with_access_requests(base, endpoint=self.endpoint, jwks_uri=self.jwks_uri)
