"""Wiring: settings in, one ASGI application out. The only place that knows every part; each
part is built by its own assembly and hands back its routes, outbox handlers and chores."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import __version__
from .access_requests.assembly import AccessRequests
from .approval_pages.assembly import approval_page_routes
from .authzen.assembly import AuthZEN, load_stores, token_pdp
from .authzen.cedar.reload import watch
from .authzen.cedar.store import PolicyStore
from .authzen.counting import CountedPDP
from .authzen.remote import RemotePDP
from .ciba.assembly import Ciba
from .ciba.endpoint import BACKCHANNEL_PATH
from .deferral.assembly import Deferrals
from .deferral.service import DeferralService
from .demo_approvers import with_demo_issuer
from .events.assembly import Events
from .front_door.assembly import FrontDoor
from .health import health_routes
from .housekeeping import Chore, run_forever
from .metrics_endpoint import RequestMetrics, metrics_routes
from .middleware import Protocols, RequestIDMiddleware
from .notifications.assembly import Notifications
from .oauth.assembly import OAuth
from .outbox import Handler, OutboxWorker
from .rar import ProfileSet, load_profiles
from .routing import IndexedRouter
from .settings import PEPAuthSettings, Settings
from .shared import Shared
from .store.backends import describe

log = logging.getLogger("bridge")

# Where people's pages live: routing errors and faults there answer with a page, not JSON.
PAGE_PREFIXES = (
    "/authorize",
    "/interaction",
    "/sign-in",
    "/sign-out",
    "/signed-in",
    "/pages",
    "/approvals",
    "/my-requests",
    "/ciba/requests",
)

# Delivered side effects are kept a day for inspection, then purged with the other chores.
OUTBOX_RETENTION_SECONDS = 86_400.0
OUTBOX_PURGE_EVERY_PASSES = 12


def startup_line(settings: Settings, oauth: bool) -> str:
    """What an operator checks first in a log: where the bridge answers and with what."""
    stores = ", ".join(f"{name} ({settings.stores[name].path})" for name in settings.stores)
    kind = "SQLite" if settings.storage.url is None else "PostgreSQL"
    storage = f"{kind} {describe(settings)}"
    demo = settings.access_requests.demo_approver_key_file is not None
    return (
        f"AuthZEN Bridge {__version__} at {settings.server.public_url}: stores {stores}; "
        f"storage {storage}; token endpoint {'on' if oauth else 'off'}; "
        f"demo approver issuer {'ON (local demo only)' if demo else 'off'}"
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
    authzen = AuthZEN(
        settings, stores, hmac.new(shared.kek, b"search-page-token", hashlib.sha256).digest()
    )
    # Approver decisions go to the engines themselves; everything else through ARAP's wrapper,
    # which verifies approvals on the way in and marks requestable denials on the way out.
    ars = AccessRequests(
        settings, shared.store, shared.keys, authzen.deciders, shared.issuers, authzen.folders
    )
    pdps = {
        name: CountedPDP(pdp, name) for name, pdp in authzen.wrapped(ars.decision_point).items()
    }
    store_routes = authzen.routes(pdps, ars.metadata)

    handlers: dict[str, Handler] = dict(ars.outbox_handlers())
    # Approvers told of what waits for them (e-mail, webhooks), through the outbox.
    notifications = Notifications(settings, shared.store, shared.keys, ars.service)
    handlers.update(notifications.outbox_handlers())
    worker = OutboxWorker(
        shared.store, handlers, lease_seconds=settings.storage.outbox_lease_seconds
    )
    chores: list[Chore] = []
    pdp = token_pdp(settings, pdps)
    oauth = None
    ciba: Ciba | None = None
    front_door: FrontDoor | None = None
    front_door_routes: list[BaseRoute] = []
    deferral_service: DeferralService | None = None
    if pdp is not None:
        # A store's PDP counts its decisions already; a remote PDP's are counted here.
        deciding = CountedPDP(pdp, "remote") if isinstance(pdp, RemotePDP) else pdp
        oauth = OAuth(
            settings,
            shared.store,
            shared.keys,
            shared.kek,
            shared.http,
            shared.issuers,
            deciding,
            profiles,
        )
        # A PDP's `notification` obligations go out through the same channels.
        oauth.obligations.register(*notifications.obligation_handlers())
        # People at /authorize (before the deferral installs, so the deferred grant stays
        # last in the metadata).
        if settings.front_door.enabled:
            front_door = FrontDoor(settings, shared.store, oauth, shared.kek, shared.http)
            front_door_routes = front_door.routes() + approval_page_routes(
                settings.issuer, ars.service, front_door
            )
            chores += front_door.chores()
        # Deferred token requests file their access requests with the bridge's own service,
        # or, behind a remote PDP, with the service its requestable denials point at.
        deferrals = Deferrals(
            settings,
            shared.store,
            shared.kek,
            oauth,
            deciding,
            ars.filing_for(pdp, shared.http),
            wake=worker.wake,
        )
        if front_door is not None:
            front_door.install_deferral(deferrals.direct(oauth))
            if settings.ciba.enabled:
                # CIBA: its user approves on the front door's pages; after the deferral, so
                # the CIBA grant comes last in the metadata.
                ciba = Ciba(settings, shared.store, oauth, deferrals, front_door, wake=worker.wake)
                front_door_routes += ciba.routes()
                handlers.update(ciba.outbox_handlers())
                chores += ciba.chores()
        handlers.update(deferrals.outbox_handlers())
        chores += deferrals.chores()
        deferral_service = deferrals.service
    else:
        log.info("no PDP for token requests ([pdp] unset, no default store): OAuth is off")
    chores += ars.chores()
    # Shared Signals events, received and sent; continuous evaluation at introspection.
    events = Events(
        settings,
        shared.store,
        shared.keys,
        shared.kek,
        shared.http,
        shared.issuers,
        ars.service,
        authzen.deciders,
        pdps,
        deferrals=deferral_service,
        wake=worker.wake,
    )
    if oauth is not None and pdp is not None:
        events.install(oauth, pdp)
    handlers.update(events.outbox_handlers())
    chores += events.chores()

    async def purge_outbox() -> None:
        await shared.store.outbox_purge(time.time() - OUTBOX_RETENTION_SECONDS)

    chores.append(Chore("purge the outbox", purge_outbox, every_passes=OUTBOX_PURGE_EVERY_PASSES))

    default_auth = settings.stores["default"].auth if "default" in settings.stores else None
    oauth_routes = oauth.routes() if oauth is not None else []
    # The router tries routes in order: the busiest (default store, token endpoint) go first.
    routes: list[BaseRoute] = [
        *store_routes.pop("default", []),
        *oauth_routes,
        *front_door_routes,
        *ars.routes(default_auth or PEPAuthSettings()),
        *(route for named in store_routes.values() for route in named),
        *events.routes(),
        shared.jwks_route(),
        *health_routes(
            authzen.holders, shared.store, oauth.registry if oauth is not None else None
        ),
        *metrics_routes(settings, shared.store),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shared.start()
        log.info("%s", startup_line(settings, oauth is not None))
        worker.start()
        background = [asyncio.create_task(run_forever(chores, shared.store))]
        if settings.reload.enabled:
            holders = list(authzen.holders.values())
            background.append(asyncio.create_task(watch(holders, settings.reload.interval_seconds)))
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

    # Routing errors (404, 405) and bugs answer in the words of the route's protocol.
    prefixes = [(prefix, "problem") for prefix in ars.path_prefixes]
    if front_door is not None:
        prefixes += [(prefix, "page") for prefix in PAGE_PREFIXES]
    if oauth is not None:
        prefixes += [(r.path, "oauth") for r in oauth_routes if isinstance(r, Route)]
        if front_door is not None:
            prefixes.append(("/par", "oauth"))
        if ciba is not None:
            prefixes.append((BACKCHANNEL_PATH, "oauth"))
    protocols = Protocols(prefixes)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        media_type, body = protocols.error(request.url.path, exc.status_code, exc.detail)
        return Response(body, exc.status_code, headers=exc.headers, media_type=media_type)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},  # type: ignore[dict-item]
    )
    # Fixed paths are looked up, not searched for among some forty routes (bridge.routing).
    app.router = IndexedRouter(routes, lifespan=lifespan)
    if settings.metrics.enabled:
        app.add_middleware(RequestMetrics)
    # Added last, so outermost: even the metrics layer runs with the request's id.
    app.add_middleware(RequestIDMiddleware, protocols=protocols)
    app.state.settings = settings
    app.state.holders = authzen.holders
    app.state.pdps = authzen.engines
    app.state.oauth = oauth
    # The seam sign-in methods meet: front_door.sessions.establish_session reads it.
    app.state.front_door_sessions = front_door.sessions if front_door is not None else None
    app.state.store = shared.store
    app.state.access_requests = ars
    app.state.outbox = worker
    return app
