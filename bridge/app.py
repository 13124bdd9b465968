"""Wiring: settings in, one ASGI application out. The only place that knows every part."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .access_requests.assembly import AccessRequests
from .access_requests.remote_backend import (
    LOCAL_ID_PREFIX,
    RemoteAccessRequests,
    callback_routes,
)
from .authzen.cedar.engine import CedarPDP
from .authzen.cedar.reload import StoreHolder, watch
from .authzen.cedar.store import PolicyStore, StoreLoadError, StoreProblem, load_store
from .authzen.pagination import Paginator
from .authzen.pdp import PDP
from .authzen.pep_auth import PEPAuthenticator
from .authzen.remote import RemotePDP
from .authzen.routes import StoreAPI, StoreEndpoints
from .deferral.service import DeferralService
from .demo_approvers import with_demo_issuer
from .health import health_routes
from .middleware import RequestIDMiddleware
from .oauth.access_request_backend import EmbeddedAccessRequests
from .oauth.deferred import TASK_TERMINAL
from .oauth.service import OAuthService
from .outbox import Delivered, Handler, OutboxWorker, Outcome
from .rar import ProfileSet, load_profiles
from .settings import PEPAuthSettings, Settings
from .shared import Shared
from .store.contract import OutboxRow
from .store.contract.deferrals import PING_KIND

log = logging.getLogger("bridge")

# How often expired deferrals and access requests are swept, and every how many such passes
# finished records are purged; delivered side effects are kept a day for inspection.
HOUSEKEEPING_SECONDS = 5.0
PURGE_EVERY_PASSES = 12
OUTBOX_RETENTION_SECONDS = 86_400.0


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


def token_pdp(settings: Settings, pdps: dict[str, PDP]) -> PDP | None:
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
    settings = with_demo_issuer(settings)
    stores = stores if stores is not None else load_stores(settings)
    profiles = (
        profiles
        if profiles is not None
        else load_profiles(settings.resolve(settings.oauth.profiles_dir), missing_ok=True)
    )
    shared = Shared.from_settings(settings)
    secret = settings.search.page_token_secret
    paginator = Paginator(
        secret.get_secret_value().encode() if secret else None, settings.limits.max_page_size
    )
    public_url = settings.server.public_url.rstrip("/")
    holders = {name: StoreHolder(store) for name, store in stores.items()}
    endpoints = {name: StoreEndpoints(name, public_url) for name in holders}
    engines = {
        name: CedarPDP(holder, paginator, explanations=settings.stores[name].explanations)
        for name, holder in holders.items()
    }
    # Approver decisions go to the engines themselves; everything else through ARAP's wrapper,
    # which verifies approvals on the way in and marks requestable denials on the way out.
    ars = AccessRequests(
        settings,
        shared.store,
        shared.keys,
        {endpoints[name].pdp_id: engine for name, engine in engines.items()},
        shared.issuers,
    )
    pdps: dict[str, PDP] = {
        name: ars.decision_point(engine, endpoints[name].pdp_id) for name, engine in engines.items()
    }
    store_routes = {
        name: StoreAPI(
            endpoints[name],
            pdps[name],
            PEPAuthenticator(settings.stores[name].auth, realm=endpoints[name].pdp_id),
            settings.limits,
            metadata=ars.metadata(endpoints[name].metadata()),
        ).routes()
        for name in holders
    }

    # The worker's handlers are filled in once every part that handles a kind exists.
    handlers: dict[str, Handler] = {}
    worker = OutboxWorker(shared.store, handlers)
    deferrals = DeferralService(
        shared.store,
        shared.kek,
        settings.deferral,
        allow_private_callbacks=settings.access_requests.allow_private_callbacks,
        on_queued=worker.wake,
    )
    pdp = token_pdp(settings, pdps)
    # Deferred token requests file their access requests with the bridge's own service, or,
    # behind a remote PDP, with the service its requestable denials point at.
    remote_requests = (
        RemoteAccessRequests(
            shared.store,
            pdp,
            settings.pdp.remote,
            shared.http,
            public_url=public_url,
            allow_private=settings.access_requests.allow_private_callbacks,
            request_lifetime_seconds=settings.access_requests.request_lifetime_seconds,
        )
        if isinstance(pdp, RemotePDP) and settings.pdp.remote is not None
        else None
    )
    oauth = None
    if pdp is not None:
        oauth = OAuthService(
            settings,
            shared,
            pdp,
            profiles,
            deferrals=deferrals,
            access_requests=remote_requests or EmbeddedAccessRequests(ars.service),
        )
    else:
        log.info("no PDP for token requests ([pdp] unset, no default store): OAuth is off")
    handlers.update(ars.outbox_handlers())
    handlers[PING_KIND] = deferrals.deliver_ping
    handlers[TASK_TERMINAL] = (
        oauth.deferred.on_task_terminal
        if oauth is not None and oauth.deferred is not None
        else _nothing_waits
    )

    default_auth = settings.stores["default"].auth if "default" in settings.stores else None
    # The router tries routes in order: the busiest (default store, token endpoint) go first.
    routes: list[Route] = [
        *store_routes.pop("default", []),
        *(oauth.routes() if oauth is not None else []),
        *(callback_routes(remote_requests) if remote_requests is not None else []),
        *ars.routes(default_auth or PEPAuthSettings()),
        *(route for named in store_routes.values() for route in named),
        shared.jwks_route(),
        *health_routes(holders),
    ]

    async def housekeeping() -> None:
        passes = 0
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            passes += 1
            try:
                for task_id in await deferrals.expire_due():
                    with contextlib.suppress(Exception):  # already ended: nothing to cancel
                        if remote_requests is not None and task_id.startswith(LOCAL_ID_PREFIX):
                            await remote_requests.abandon(task_id)
                            continue
                        task = await ars.service.task(task_id)
                        await ars.service.cancel(task_id, task.record.requester)
                if remote_requests is not None:
                    await remote_requests.refresh_due()
                if passes % PURGE_EVERY_PASSES == 0:
                    # Purging scans whole tables: seldom, not every few seconds.
                    await ars.service.sweep()
                    await shared.store.outbox_purge(time.time() - OUTBOX_RETENTION_SECONDS)
                else:
                    await ars.service.expire_due()
            except Exception:  # keep sweeping; a logged failure beats a dead sweeper
                log.exception("housekeeping failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shared.start()
        worker.start()
        background = [asyncio.create_task(housekeeping())]
        if settings.reload.enabled:
            background.append(
                asyncio.create_task(watch(list(holders.values()), settings.reload.interval_seconds))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await worker.stop()
            if isinstance(pdp, RemotePDP):
                await pdp.aclose()
            await shared.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.add_middleware(RequestIDMiddleware)
    app.state.settings = settings
    app.state.holders = holders
    app.state.pdps = engines
    app.state.oauth = oauth
    app.state.store = shared.store
    app.state.access_requests = ars
    app.state.deferrals = deferrals
    app.state.outbox = worker
    return app


async def _nothing_waits(row: OutboxRow) -> Outcome:
    """Without a token endpoint no deferral can wait on an access request."""
    return Delivered()


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404 and 405 from routing, in the same JSON shape as every other error."""
    return JSONResponse(
        {"error": {"status": exc.status_code, "message": exc.detail}},
        status_code=exc.status_code,
        headers=exc.headers,
    )
