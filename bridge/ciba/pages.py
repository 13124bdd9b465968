"""The user's pages for the CIBA requests that wait for her, each a short pipeline of named
checks, on the front door's sessions and sign-in:

    GET  /ciba/requests                 signed in → the requests waiting for her
    GET  /ciba/requests/{id}            signed in → hers → the request: the client, the
                                        binding message, what it asks in words, its state
    POST /ciba/requests/{id}/decision   CSRF → signed in → hers, pending, not expired →
                                        approve or decline (`decision.UserDecisions`) → back

Someone else's request is unknown to her (the same page as a request that never existed),
and the store takes an answer only from the subject the request names. Nothing changes on a
GET.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..front_door.person import Person
from ..front_door.sessions import BrowserState, Sessions
from ..front_door.sign_in import SignIn, SignInStop
from ..store.contract import CibaRequestRecord
from ..store.contract.ciba import APPROVED, DECLINED, PENDING
from ..store.contract.deferrals import PENDING as DEFERRAL_PENDING
from ..web.pages import Pages
from .decision import Store, UserDecisions
from .user_request import REQUESTS_PATH, page_path

log = logging.getLogger("bridge.ciba")

PAGE_SIZE = 50
_UNKNOWN = "There is no such request for you. It may have ended and been removed."
_DONE = {"approve": "You approved.", "decline": "You declined."}


@dataclass(frozen=True)
class RequestView:
    client: str
    binding_message: str | None
    words: list[str]
    state: str  # waiting | approved | declined | ended | expired
    state_text: str
    actionable: bool
    expires_at: str
    path: str


class CibaPages:
    def __init__(
        self,
        store: Store,
        decisions: UserDecisions,
        sessions: Sessions,
        sign_in: SignIn,
        pages: Pages,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._decisions = decisions
        self._sessions = sessions
        self._sign_in = sign_in
        self._pages = pages
        self._clock = clock

    # -- GET /ciba/requests ------------------------------------------------------------------

    async def waiting(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            found = await self._store.ciba_requests_pending_for(
                person.subject_type, person.name, self._clock(), PAGE_SIZE
            )
            # Pending on her side, but the client may have cancelled (or the policy ended)
            # the deferral meanwhile: only what she can still answer is listed.
            views = [v for v in [await self._view(record) for record in found] if v.actionable]
            return self._page("ciba_requests.html", state, person, requests=views)
        except SignInStop as stop:
            return stop.response

    # -- GET /ciba/requests/{id} --------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            record = await self._hers(request.path_params["id"], person)
            done = request.query_params.get("done")
            return self._page(
                "ciba_request.html",
                state,
                person,
                request=await self._view(record),
                done_text=_DONE.get(done or ""),
            )
        except SignInStop as stop:
            return stop.response

    # -- POST /ciba/requests/{id}/decision ----------------------------------------------------

    async def decide(self, request: Request) -> Response:
        try:
            form, person = await self._sign_in.posted(request)
            record = await self._hers(request.path_params["id"], person)
            decision = form.get("decision")
            if decision not in _DONE:
                raise SignInStop(self._sign_in.error_page("Choose Approve or Decline.", 400))
            view = await self._view(record)
            if (
                not view.actionable
                or await self._decisions.decide(record.id, person, decision == "approve") is None
            ):
                raise SignInStop(
                    self._sign_in.error_page(
                        f"This request cannot be answered: {view.state_text}", 409
                    )
                )
            path = f"{view.path}?done={decision}"
            return RedirectResponse(path, status_code=303)
        except SignInStop as stop:
            return stop.response

    # -- the named checks ---------------------------------------------------------------

    async def _hers(self, request_id: str, person: Person) -> CibaRequestRecord:
        """Her request; anyone else's is unknown to her."""
        record = await self._store.ciba_request_get(request_id)
        if (
            record is None
            or record.subject_id != person.name
            or record.subject_type != person.subject_type
        ):
            raise SignInStop(
                self._pages.render(
                    "error.html", status=404, title="No such request", message=_UNKNOWN
                )
            )
        return record

    async def _view(self, record: CibaRequestRecord) -> RequestView:
        now = self._clock()
        deferral = await self._store.deferral_find(record.code_hash)
        live = deferral is not None and deferral.status == DEFERRAL_PENDING
        if record.status == APPROVED:
            state = "approved"
            text = "You approved."
            if live and deferral is not None and deferral.task_id is not None:
                text += " The approvers that policy names are asked as well."
        elif record.status == DECLINED:
            state, text = "declined", "You declined."
        elif now >= record.expires_at:
            state, text = "expired", "This request has expired."
        elif not live:
            state, text = "ended", "This request has ended."
        else:
            state, text = "waiting", "Waiting for your answer."
        return RequestView(
            client=record.client_id,
            binding_message=record.binding_message,
            words=record.words,
            state=state,
            state_text=text,
            actionable=state == "waiting" and record.status == PENDING,
            expires_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.expires_at)),
            path=page_path(quote(record.id, safe="")),
        )

    def _page(self, page: str, state: BrowserState, person: Person, **context: Any) -> Response:
        return self._pages.render(
            page,
            person_name=person.name,
            csrf_token=self._sessions.csrf_token(state),
            requests_path=REQUESTS_PATH,
            **context,
        )
