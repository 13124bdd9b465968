"""The CIBA part, assembled: the backchannel authentication endpoint and the CIBA grant
installed into the OAuth part, on the deferral part's polling, with the user's pages on the
front door's sessions.

    ciba = Ciba(settings, store, oauth, deferrals, front_door, wake=worker.wake)
    routes += ciba.routes()
    handlers.update(ciba.outbox_handlers())   # ciba_decided
    chores += ciba.chores()                   # purge

Install it after the deferral part: the CIBA grant comes last in the metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute, Route

from ..deferral.assembly import Deferrals
from ..front_door.assembly import FrontDoor
from ..housekeeping import Chore
from ..oauth.assembly import OAuth
from ..oauth.extensions import NoExtension
from ..outbox import Handler
from ..settings import Settings
from .decision import CIBA_DECIDED, Store, UserDecisions
from .endpoint import BACKCHANNEL_PATH, BackchannelConfig, BackchannelEndpoint
from .grant import CibaGrant
from .pages import CibaPages
from .user_request import REQUESTS_PATH, UserRequests
from .users import KnownUsers

# A request's row is kept this long after it expired (her page still says how it ended).
RETAIN_SECONDS = 86_400.0
PURGE_EVERY_PASSES = 12


class CibaMetadata(NoExtension):
    """CIBA Core §4: what the authorization server metadata says of CIBA."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def metadata(self) -> dict[str, Any]:
        return {
            "backchannel_authentication_endpoint": self._issuer + BACKCHANNEL_PATH,
            "backchannel_token_delivery_modes_supported": ["poll", "ping"],
            "backchannel_user_code_parameter_supported": False,
        }


class Ciba:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        oauth: OAuth,
        deferrals: Deferrals,
        front_door: FrontDoor,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        options = settings.ciba
        self.decisions = UserDecisions(store, deferrals, wake=wake)
        self.endpoint = BackchannelEndpoint(
            BackchannelConfig(
                url=settings.issuer + BACKCHANNEL_PATH,
                max_body_bytes=settings.limits.max_body_bytes,
                default_expiry=options.default_expiry_seconds,
                max_expiry=options.max_expiry_seconds,
            ),
            oauth.authenticator,
            oauth.dpop,
            oauth.decision,
            KnownUsers(settings, front_door.methods.accounts),
            deferrals.service,
            deferrals.filing,
            UserRequests(store, oauth.profiles, settings.server.public_url, wake=wake),
            oauth.profiles,
        )
        self.pages = CibaPages(
            store, self.decisions, front_door.sessions, front_door.sign_in, front_door.pages
        )
        grant = CibaGrant(
            deferrals.service,
            deferrals.reevaluation,
            deferrals.filing,
            oauth.issuer,
            oauth.decision,
        )
        oauth.install(CibaMetadata(settings.issuer), grants=(grant,))

    def routes(self) -> list[BaseRoute]:
        pages = self.pages
        return [
            Route(BACKCHANNEL_PATH, self.endpoint.handle, methods=["POST"]),
            Route(REQUESTS_PATH, pages.waiting, methods=["GET"]),
            Route(REQUESTS_PATH + "/{id}", pages.show, methods=["GET"]),
            Route(REQUESTS_PATH + "/{id}/decision", pages.decide, methods=["POST"]),
        ]

    def outbox_handlers(self) -> dict[str, Handler]:
        return {CIBA_DECIDED: self.decisions.on_decided}

    def chores(self) -> list[Chore]:
        async def purge() -> None:
            await self._store.ciba_requests_purge(time.time() - RETAIN_SECONDS)

        return [Chore("purge CIBA requests", purge, every_passes=PURGE_EVERY_PASSES)]
