"""The access request part (ARAP), assembled from settings.

    ars = AccessRequests(settings, store, keys, deciders, issuers, folders)
    pdp = ars.decision_point(cedar_pdp, endpoints.pdp_id)     # per embedded store
    filing = ars.filing_for(token_pdp, http)                  # where token requests file
    routes += ars.routes(settings.stores["default"].auth)
    handlers = ars.outbox_handlers()                          # {"arap_callback": ...}
    chores += ars.chores()                                    # expiry, purge, remote status
    metadata = ars.metadata(endpoints.metadata())             # per store

`deciders` maps each embedded store's PDP identifier (`StoreEndpoints.pdp_id`) to its
*inner* Cedar PDP: approver decisions must not be turned into requestable denials.
`folders` maps the same identifiers to the stores' folders, where their approval templates
(`approvals.toml`) are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import httpx
from starlette.routing import Route

from ..authzen.pdp import PDP
from ..authzen.remote import RemotePDP
from ..housekeeping import Chore
from ..jose.signing_keys import JWKS_PATH, SigningKeys
from ..jose.trusted_issuers import TrustedIssuers
from ..outbox import Delivered, Handler, Outcome
from ..settings import PEPAuthSettings, Settings
from ..store.contract import AuditStore, OutboxRow, RemoteTaskStore, TaskStore
from .auth import ApproverAuthenticator, RequesterAuthenticator
from .binding_token import BindingTokens
from .callbacks import KIND as CALLBACK_KIND
from .callbacks import CallbackSender
from .filing import AccessRequestFiling, EmbeddedFiling
from .form_routes import FORM_PATHS, form_routes
from .forms import RequestForms
from .lifecycle import TASK_TERMINAL
from .metadata import with_access_requests
from .pdp import ARAPDecisionPoint
from .remote_backend import RemoteAccessRequests, callback_routes
from .routes import API_PATH, access_request_routes
from .service import AccessRequestService
from .tasks import TaskURLs
from .templates import TemplateCatalog

log = logging.getLogger("bridge.access_requests")


class Store(TaskStore, RemoteTaskStore, AuditStore, Protocol):
    """What this part keeps: its tasks, those filed with a remote service, the audit."""


# Every how many housekeeping passes finished access requests are purged.
PURGE_EVERY_PASSES = 12


class AccessRequests:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: SigningKeys,
        deciders: Mapping[str, PDP],
        issuers: TrustedIssuers,
        folders: Mapping[str, Path] | None = None,
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
        self.remote: RemoteAccessRequests | None = None
        default = settings.stores.get("default")
        if options.allow_anonymous_requesters and not (default and default.auth.enabled):
            log.warning(
                "access_requests.allow_anonymous_requesters is on: anyone can file, read and "
                "cancel access requests at /access/v1/requests (local demos only)"
            )
        self.urls = TaskURLs(self.endpoint, self.public_url + API_PATH + "/approvals")
        self.tokens = BindingTokens(keys, settings.issuer, self.endpoint, clock)
        templates = TemplateCatalog(dict(folders or {}))
        self.forms = RequestForms(
            templates, public_url=self.public_url, api_url=self.public_url + API_PATH
        )
        self.service = AccessRequestService(
            store,
            self.tokens,
            deciders,
            options,
            self.urls,
            templates=templates,
            forms=self.forms,
            max_items=settings.limits.max_batch_items,
            clock=clock,
        )
        self.approvers = ApproverAuthenticator(
            issuers,
            options.approver_issuer,
            settings.approver_audience,
            realm=self.public_url,
            subject_audiences=frozenset(settings.subject_token_audiences()),
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
            form_urls=self.forms.urls,
            clock=self.clock,
        )

    def routes(self, requester_auth: PEPAuthSettings) -> list[Route]:
        requesters = RequesterAuthenticator(
            requester_auth,
            realm=self.public_url,
            allow_anonymous=self.settings.access_requests.allow_anonymous_requesters,
        )
        routes = access_request_routes(
            self.service,
            requesters,
            self.approvers,
            max_body_bytes=self.settings.limits.max_body_bytes,
        )
        routes += form_routes(self.forms, requesters)
        if self.remote is not None:
            routes = [*callback_routes(self.remote), *routes]
        return routes

    def outbox_handlers(self) -> dict[str, Handler]:
        """ARAP callbacks; and for `TASK_TERMINAL`, a handler for when nothing waits on
        tasks (no token endpoint): the part that does wait registers its own over it."""
        return {CALLBACK_KIND: self.callbacks, TASK_TERMINAL: _nothing_waits}

    def metadata(self, base: dict[str, object]) -> dict[str, object]:
        return with_access_requests(base, endpoint=self.endpoint, jwks_uri=self.jwks_uri)

    @property
    def path_prefixes(self) -> list[str]:
        """Where this part's routes live (they all answer in problem details)."""
        return [
            API_PATH + "/requests",
            API_PATH + "/approvals",
            API_PATH + "/callbacks",
            *FORM_PATHS,
        ]

    def filing_for(self, pdp: PDP, http: httpx.AsyncClient) -> AccessRequestFiling:
        """Where token requests decided by `pdp` file their access requests: the remote
        PDP's own service when it is remote, else this bridge's."""
        remote = self.settings.pdp.remote
        if isinstance(pdp, RemotePDP) and remote is not None:
            self.remote = RemoteAccessRequests(
                self.store,
                pdp,
                remote,
                http,
                public_url=self.public_url,
                allow_private=self.settings.access_requests.allow_private_callbacks,
                request_lifetime_seconds=self.settings.access_requests.request_lifetime_seconds,
            )
            return self.remote
        return EmbeddedFiling(self.service)

    def chores(self) -> list[Chore]:
        chores = [
            Chore("expire access requests", self.service.expire_due),
            Chore("escalate approval steps", self.service.escalate_due),
            # Purging scans whole tables: seldom, not every few seconds.
            Chore("purge access requests", self.service.sweep, every_passes=PURGE_EVERY_PASSES),
        ]
        if self.remote is not None:
            chores.append(Chore("read remote access requests", self.remote.refresh_due))
        return chores


async def _nothing_waits(row: OutboxRow) -> Outcome:
    return Delivered()
