"""The deferral part, assembled: the Deferred Token Response installed into the OAuth part,
with its outbox handlers and its housekeeping.

    deferrals = Deferrals(settings, store, kek, oauth, pdp, filing, wake=worker.wake)
    handlers.update(deferrals.outbox_handlers())   # pings, task_terminal
    chores += deferrals.chores()                    # expiry

`filing` is where access requests are filed: the bridge's own service, or the remote PDP's.
"""

from __future__ import annotations

from collections.abc import Callable

from ..access_requests.filing import AccessRequestFiling
from ..authzen.pdp import PDP
from ..housekeeping import Chore
from ..oauth.assembly import OAuth
from ..outbox import Handler
from ..settings import Settings
from ..store.contract.deferrals import PING_KIND
from .direct import DirectDeferral
from .extension import DeferredResponses
from .grant import DeferredGrant
from .reevaluation import TASK_TERMINAL, Reevaluation
from .service import DeferralService, Store


class Deferrals:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        kek: bytes,
        oauth: OAuth,
        pdp: PDP,
        filing: AccessRequestFiling,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.service = DeferralService(
            store,
            kek,
            settings.deferral,
            allow_private_callbacks=settings.access_requests.allow_private_callbacks,
            on_queued=wake,
        )
        self.filing = filing
        self.reevaluation = Reevaluation(pdp, filing, self.service)
        self.extension = DeferredResponses(self.service, filing, oauth.profiles)
        self.grant = DeferredGrant(
            self.service, self.reevaluation, filing, oauth.issuer, oauth.decision
        )
        oauth.install(self.extension, grants=(self.grant,))

    def direct(self, oauth: OAuth) -> DirectDeferral:
        """Direct deferral at the authorization endpoint, for the front door to install."""
        return DirectDeferral(
            self.service, self.filing, oauth.decision, oauth.registry, oauth.profiles
        )

    async def settle(self, code_hash: str) -> bool:
        """Settle the deferral of `code_hash` now that the one its consent names answered
        (`DeferralService.settle`, deciding as a task's end does)."""
        return await self.service.settle(code_hash, self.reevaluation.decide)

    def outbox_handlers(self) -> dict[str, Handler]:
        return {
            PING_KIND: self.service.deliver_ping,
            TASK_TERMINAL: self.reevaluation.on_task_terminal,
        }

    def chores(self) -> list[Chore]:
        return [Chore("expire deferrals", self._expire)]

    async def _expire(self) -> None:
        """Expire what is due; an access request no deferral waits on any more is dropped."""
        for task_id in await self.service.expire_due():
            try:
                await self.filing.abandon(task_id)
            except Exception:  # already ended: nothing to cancel
                continue
