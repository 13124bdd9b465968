"""The events part (Shared Signals), assembled from `[events]`.

    events = Events(settings, store, keys, kek, http, issuers, ars.service, deciders, pdps,
                    deferrals=deferrals.service, wake=worker.wake)
    events.install(oauth)                    # continuous evaluation at introspection
    routes += events.routes()                # /ssf/events; the transmitter's endpoints
    handlers.update(events.outbox_handlers())   # ssf_push
    chores += events.chores()                # fan-out, polling transmitters, purges

`deciders`: each embedded store's own engine by its PDP identifier (decisions an event
re-asks with new facts); `pdps`: each store's decision point by name (a request an event
opens is decided as the store's AuthZEN API decides).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..access_requests.service import AccessRequestService
from ..access_requests.subject_events import SubjectEvents
from ..authzen.pdp import PDP
from ..deferral.service import DeferralService
from ..housekeeping import Chore
from ..jose.signing_keys import SigningKeys
from ..jose.trusted_issuers import TrustedIssuers
from ..oauth.assembly import OAuth
from ..oauth.clients import ClientRegistry
from ..outbox import Handler
from ..settings import Settings
from ..store.contract import Store
from .continuous_evaluation import ApprovalsStand, PolicyStillPermits, RevokedSessions
from .event_types import (
    ACCESS_REQUEST_DECISION,
    ACCESS_REQUEST_OPEN,
    RECEIVED,
    REEVALUATING,
    REVOKING,
)
from .fan_out import PUSH_KIND, FanOut
from .poll_endpoint import POLL_PATH, PollEndpoint
from .polling import PollingReceiver
from .push_delivery import AuthorizationSeal, PushDelivery
from .push_endpoint import PushEndpoint
from .receivers import ReceiverAuthenticator, management_audience
from .receiving import Action, Receiver
from .reevaluation import ReevaluateSubject
from .request_decisions import DecideRequest
from .request_opening import OpenRequest
from .stream_management import StreamManagement
from .streams import OwnTransmitter
from .subject_revocation import RevokeSubject
from .transmitter_metadata import metadata, well_known_paths
from .transmitters import PUSH_PATH, KnownTransmitters

log = logging.getLogger("bridge.events")

# A subject's revoked access tokens are remembered at least this long.
MIN_KEEP_SECONDS = 86_400
# Every how many housekeeping passes the poll queue and the revoked subjects are purged.
PURGE_EVERY_PASSES = 12


class Events:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: SigningKeys,
        kek: bytes,
        http: httpx.AsyncClient,
        issuers: TrustedIssuers,
        service: AccessRequestService,
        deciders: Mapping[str, PDP],
        pdps: Mapping[str, PDP],
        *,
        deferrals: DeferralService | None = None,
        wake: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options = settings.events
        self.settings = settings
        self.store = store
        self.clock = clock
        public_url = settings.server.public_url.rstrip("/")
        for peer in options.transmitters:
            unknown = sorted(set(peer.events) - RECEIVED)
            if unknown:
                raise ValueError(
                    f"events.transmitters: {peer.name} may send {unknown[0]!r}, "
                    "which is not an event type the bridge acts on (docs/events.md)"
                )
        self.transmitters = KnownTransmitters(options, public_url, http)
        requests = SubjectEvents(service)
        revoke = RevokeSubject(
            store,
            requests,
            deferrals,
            keep_seconds=float(longest_token_lifetime(settings)),
            clock=clock,
            wake=wake,
        )
        reevaluate = ReevaluateSubject(store, requests, deciders, clock=clock)
        actions: dict[str, Action] = {
            **dict.fromkeys(REVOKING, revoke),
            **dict.fromkeys(REEVALUATING, reevaluate),
            ACCESS_REQUEST_DECISION: DecideRequest(service, store, clock),
            ACCESS_REQUEST_OPEN: OpenRequest(service, pdps, store, clock),
        }
        self.receiver = Receiver(
            self.transmitters, store, actions, max_age=options.max_age_seconds, clock=clock
        )
        self.push = PushEndpoint(self.receiver, settings.limits.max_body_bytes)
        self.polling = PollingReceiver(self.receiver, http, settings)

        transmitter = options.transmitter
        receivers = {r.name: r for r in transmitter.receivers}
        self.fan_out = FanOut(
            store,
            settings.issuer,
            receivers,
            default_all=transmitter.default_subjects == "ALL",
            clock=clock,
            wake=wake,
        )
        sealing = AuthorizationSeal(kek)
        self.delivery = PushDelivery(store, keys, sealing, receivers, clock=clock)
        self.management = StreamManagement(
            store,
            ReceiverAuthenticator(
                issuers,
                transmitter.receivers,
                management_audience(settings),
                public_url,
                subject_audiences=frozenset(settings.subject_token_audiences()),
            ),
            OwnTransmitter(
                settings.issuer,
                public_url + POLL_PATH,
                transmitter.min_verification_interval_seconds,
            ),
            self.fan_out,
            sealing,
            transmitter,
            max_body_bytes=settings.limits.max_body_bytes,
            clock=clock,
        )
        self.poll_endpoint = PollEndpoint(store, keys, transmitter, settings.limits.max_body_bytes)

    def install(self, oauth: OAuth, token_pdp: PDP) -> None:
        """Continuous evaluation at introspection (`continuous_evaluation`)."""
        if self.transmitters:
            oauth.install_introspection_check(RevokedSessions(self.store))
        if self.settings.oauth.introspection_reevaluates:
            oauth.install_introspection_check(ApprovalsStand(self.store, self.clock))
            oauth.install_introspection_check(
                PolicyStillPermits(
                    self.settings,
                    oauth.decision,
                    oauth.registry,
                    oauth.profiles,
                    token_pdp,
                    self.store,
                    clock=self.clock,
                )
            )

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        if self.transmitters:
            routes.append(Route(PUSH_PATH, self.push.handle, methods=["POST"]))
        if not self.settings.events.transmitter.enabled:
            return routes
        document = metadata(self.settings)

        async def configuration(request: Request) -> Response:
            return JSONResponse(document, headers={"Cache-Control": "max-age=300"})

        management = self.management
        routes += [Route(path, configuration, methods=["GET"]) for path in well_known_paths(
            self.settings.issuer
        )]  # fmt: skip
        routes += [
            Route(
                "/ssf/streams",
                management.endpoint(management.streams),
                methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            ),
            Route("/ssf/status", management.endpoint(management.status), methods=["GET", "POST"]),
            Route(
                "/ssf/subjects:add", management.endpoint(management.add_subject), methods=["POST"]
            ),
            Route(
                "/ssf/subjects:remove",
                management.endpoint(management.remove_subject),
                methods=["POST"],
            ),
            Route("/ssf/verify", management.endpoint(management.verify), methods=["POST"]),
            Route(
                POLL_PATH + "{stream_id}",
                management.endpoint(self.poll_endpoint.poll),
                methods=["POST"],
            ),
        ]
        return routes

    def outbox_handlers(self) -> dict[str, Handler]:
        """`ssf_push`, whether or not the transmitter is on: rows queued before it was
        turned off are then dropped with their streams' status as it is."""
        return {PUSH_KIND: self.delivery}

    def chores(self) -> list[Chore]:
        chores = []
        if self.settings.events.transmitter.enabled:
            chores.append(Chore("queue the transmitter's events", self.fan_out.run))
        if self.polling.polled:
            chores.append(Chore("poll event transmitters", self.polling.poll_all))
        chores.append(Chore("purge events", self._purge, every_passes=PURGE_EVERY_PASSES))
        return chores

    async def _purge(self) -> None:
        now = self.clock()
        retention = self.settings.events.transmitter.poll_retention_seconds
        await self.store.poll_queue_purge(now - retention)
        await self.store.subjects_purge(now)


def longest_token_lifetime(settings: Settings) -> int:
    """The longest an access token of the bridge lives (a client may set its own), and at
    least a day: a client whose registration changes later may live longer."""
    registry = ClientRegistry.load(settings.resolve(settings.oauth.clients_file), missing_ok=True)
    default = settings.oauth.access_token_lifetime_seconds
    return max(registry.longest_token_lifetime(default), MIN_KEEP_SECONDS)
