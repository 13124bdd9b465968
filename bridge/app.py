"""Wiring: settings in, one ASGI application out. The only place that knows every part."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .authzen.cedar.engine import CedarPDP
from .authzen.cedar.reload import StoreHolder, watch
from .authzen.cedar.store import PolicyStore, StoreLoadError, StoreProblem, load_store
from .authzen.pagination import Paginator
from .authzen.pdp import PDP
from .authzen.pep_auth import PEPAuthenticator
from .authzen.remote import RemotePDP
from .authzen.routes import StoreAPI, StoreEndpoints
from .health import health_routes
from .middleware import RequestIDMiddleware
from .oauth.service import OAuthService
from .rar import ProfileSet, load_profiles
from .settings import Settings
from .store.sqlite import SQLiteStore

log = logging.getLogger("bridge")


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


def token_pdp(settings: Settings, pdps: dict[str, CedarPDP]) -> PDP | None:
    """The PDP that decides token requests: an embedded store, or a remote AuthZEN PDP.

    None when `[pdp]` is not configured and there is no `default` store: the bridge then
    serves only the AuthZEN API. A configured store that does not exist is an error.
    """
    if settings.pdp.kind == "remote":
        assert settings.pdp.remote is not None
        return RemotePDP(settings.pdp.remote)
    if settings.pdp.store in pdps:
        return pdps[settings.pdp.store]
    if "pdp" not in settings.model_fields_set:
        return None
    raise StoreLoadError(
        [StoreProblem("pdp.store", None, f"no store named {settings.pdp.store!r} is configured")]
    )


def create_app(
    settings: Settings,
    stores: dict[str, PolicyStore] | None = None,
    profiles: ProfileSet | None = None,
) -> Starlette:
    stores = stores if stores is not None else load_stores(settings)
    profiles = (
        profiles
        if profiles is not None
        else load_profiles(settings.resolve(settings.oauth.profiles_dir), missing_ok=True)
    )
    secret = settings.search.page_token_secret
    paginator = Paginator(
        secret.get_secret_value().encode() if secret else None, settings.limits.max_page_size
    )
    holders = {name: StoreHolder(store) for name, store in stores.items()}
    pdps: dict[str, CedarPDP] = {}
    store_routes: dict[str, list[Route]] = {}
    for name, holder in holders.items():
        options = settings.stores[name]
        endpoints = StoreEndpoints(name, settings.server.public_url.rstrip("/"))
        pdps[name] = CedarPDP(holder, paginator, explanations=options.explanations)
        auth = PEPAuthenticator(options.auth, realm=endpoints.pdp_id)
        store_routes[name] = StoreAPI(endpoints, pdps[name], auth, settings.limits).routes()

    store = SQLiteStore(settings.resolve(settings.storage.path))
    pdp = token_pdp(settings, pdps)
    oauth = OAuthService(settings, store, pdp, profiles) if pdp is not None else None
    if oauth is None:
        log.info("no PDP for token requests ([pdp] unset, no default store): OAuth is off")
    # The router tries routes in order: the busiest (default store, token endpoint) go first.
    routes = [
        *store_routes.pop("default", []),
        *(oauth.routes() if oauth is not None else []),
        *(route for named in store_routes.values() for route in named),
        *health_routes(holders),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        if oauth is not None:
            await oauth.start()
        watcher = None
        if settings.reload.enabled:
            watcher = asyncio.create_task(
                watch(list(holders.values()), settings.reload.interval_seconds)
            )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if oauth is not None:
                await oauth.stop()
            if isinstance(pdp, RemotePDP):
                await pdp.aclose()
            await store.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.add_middleware(RequestIDMiddleware)
    app.state.settings = settings
    app.state.holders = holders
    app.state.pdps = pdps
    app.state.oauth = oauth
    app.state.store = store
    return app


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404 and 405 from routing, in the same JSON shape as every other error."""
    return JSONResponse(
        {"error": {"status": exc.status_code, "message": exc.detail}},
        status_code=exc.status_code,
        headers=exc.headers,
    )
