"""The AuthZEN part, assembled: one embedded Cedar PDP per configured policy store, served as
the Authorization API 1.0 (`default` at `/access/v1/...`, the others at
`/stores/<name>/access/v1/...`), watched and reloaded, and the PDP that decides token
requests (an embedded store, or a remote AuthZEN PDP).

    authzen = AuthZEN(settings, stores)
    pdps = authzen.wrapped(lambda engine, pdp_id: ...)   # e.g. ARAP's decision points
    routes += authzen.routes(pdps, metadata=...)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.routing import Route

from ..settings import Settings
from .capabilities import TOKEN_ISSUANCE
from .cedar.engine import CedarPDP
from .cedar.reload import StoreHolder
from .cedar.store import PolicyStore, StoreLoadError, StoreProblem, load_store
from .pagination import Paginator
from .pdp import PDP
from .pep_auth import PEPAuthenticator
from .remote import RemotePDP
from .routes import StoreAPI, StoreEndpoints

log = logging.getLogger("bridge.authzen")

Metadata = dict[str, object]


def load_stores(settings: Settings) -> dict[str, PolicyStore]:
    """Every configured store, or `StoreLoadError` listing the problems of all of them."""
    stores: dict[str, PolicyStore] = {}
    problems: list[StoreProblem] = []
    for name in settings.stores:
        try:
            stores[name] = load_store(name, settings.store_path(name))
        except StoreLoadError as exc:
            problems.extend(exc.problems)
    if problems:
        raise StoreLoadError(problems)
    return stores


class AuthZEN:
    def __init__(
        self,
        settings: Settings,
        stores: Mapping[str, PolicyStore],
        page_token_key: bytes | None = None,
    ) -> None:
        """`page_token_key` signs search `next_token`s unless `search.page_token_secret`
        is set: a key every worker and replica sharing the key-encryption key derives alike,
        so a token from one is good at the others."""
        self.settings = settings
        secret = settings.search.page_token_secret
        paginator = Paginator(
            secret.get_secret_value().encode() if secret else page_token_key,
            settings.limits.max_page_size,
        )
        public_url = settings.server.public_url.rstrip("/")
        self.holders = {name: StoreHolder(store) for name, store in stores.items()}
        self.endpoints = {
            name: StoreEndpoints(
                name,
                public_url,
                (TOKEN_ISSUANCE,) if settings.stores[name].token_issuance else (),
            )
            for name in self.holders
        }
        self.engines = {
            name: CedarPDP(holder, paginator, explanations=settings.stores[name].explanations)
            for name, holder in self.holders.items()
        }

    @property
    def deciders(self) -> dict[str, PDP]:
        """Each store's engine by its PDP identifier (decisions without any wrapping)."""
        return {self.endpoints[name].pdp_id: engine for name, engine in self.engines.items()}

    @property
    def folders(self) -> dict[str, Path]:
        """Each store's folder by its PDP identifier (where its approval templates are)."""
        return {
            self.endpoints[name].pdp_id: self.settings.store_path(name) for name in self.engines
        }

    def wrapped(self, wrap: Callable[[PDP, str], PDP]) -> dict[str, PDP]:
        """Each store's PDP as `wrap(engine, pdp_id)` makes it, by store name."""
        return {
            name: wrap(engine, self.endpoints[name].pdp_id) for name, engine in self.engines.items()
        }

    def routes(
        self, pdps: Mapping[str, PDP], metadata: Callable[[Metadata], Metadata]
    ) -> dict[str, list[Route]]:
        """Each store's routes by store name; `metadata` adds to each store's document."""
        return {
            name: StoreAPI(
                self.endpoints[name],
                pdps[name],
                PEPAuthenticator(
                    self.settings.stores[name].auth, realm=self.endpoints[name].pdp_id
                ),
                self.settings.limits,
                metadata=metadata(self.endpoints[name].metadata()),
            ).routes()
            for name in self.holders
        }


def token_pdp(settings: Settings, pdps: Mapping[str, PDP]) -> PDP | None:
    """The PDP that decides token requests: an embedded store, or a remote AuthZEN PDP.

    None when `[pdp]` is not configured and there is no `default` store: the bridge then
    serves only the AuthZEN API. A configured store that does not exist is an error.
    """
    if settings.pdp.kind == "remote":
        assert settings.pdp.remote is not None
        # The token issuance mapping speaks only to a PDP that claims to understand it.
        issuance = settings.pdp.mapping == "token_issuance"
        required = frozenset({TOKEN_ISSUANCE} if issuance else ())
        return RemotePDP(settings.pdp.remote, required_capabilities=required)
    if settings.pdp.store in pdps:
        return pdps[settings.pdp.store]
    if "pdp" not in settings.model_fields_set:
        return None
    raise StoreLoadError(
        [StoreProblem("pdp.store", None, f"no store named {settings.pdp.store!r} is configured")]
    )
