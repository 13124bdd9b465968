"""The pages approvers and requesters use, each a short pipeline of named checks:

    GET  /approvals                       signed in → the inbox page (filters, paging)
    GET  /approvals/granted               signed in → approvals they granted, in force
    POST /approvals/granted/{id}/revoke   CSRF → signed in → revoke → back to the list
    GET  /approvals/{id}                  signed in → theirs to see → the request, in full
    POST /approvals/{id}/decision         CSRF → signed in → approve or deny → the request
    POST /approvals/{id}/review           CSRF → signed in → confirm an emergency approval
    GET  /my-requests                     signed in → the requests made for them
    POST /my-requests/{id}/cancel         CSRF → signed in → their own → cancel

Who may see and do what is the access request service's answer (the policies' `approve`
and `revoke` decisions, and the rule that nobody decides a request made for or through
them), asked at the moment of each page and each action. A person the bridge signed in is an
approver with the bridge as the issuer. Nothing changes on a GET.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..access_requests.approvers import Approver
from ..access_requests.inbox import DECIDED_STATE, INBOX_STATES, PENDING_STATE
from ..access_requests.problems import AccessRequestProblem
from ..access_requests.service import AccessRequestService
from ..front_door.person import Person
from ..front_door.sessions import BrowserState, Sessions
from ..front_door.sign_in import SignIn, SignInStop
from ..grammar import is_template_name
from ..oauth.form import Form
from ..web.pages import Pages
from .decision_form import DecisionForm, read_decision
from .views import granted_view, history, my_request, request_view

log = logging.getLogger("bridge.approval_pages")

INBOX_PATH = "/approvals"
GRANTED_PATH = "/approvals/granted"
MINE_PATH = "/my-requests"
PAGE_SIZE = 20
MAX_NOTE = 1000


class ApprovalPages:
    def __init__(
        self,
        issuer: str,
        service: AccessRequestService,
        sessions: Sessions,
        sign_in: SignIn,
        pages: Pages,
    ) -> None:
        self._issuer = issuer
        self._service = service
        self._sessions = sessions
        self._sign_in = sign_in
        self._pages = pages

    # -- GET /approvals ---------------------------------------------------------------

    async def inbox(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            query = request.query_params
            shown = query.get("state", PENDING_STATE)
            shown = shown if shown in INBOX_STATES else PENDING_STATE
            # Like an unknown state, a filter no template could be named is no filter (it is
            # written back into the page, where a control character has no place).
            template = query.get("template") or None
            template = template if template and is_template_name(template) else None
            before = _number(query.get("before"))
            approver = self._approver(person)
            page = await self._service.inbox(
                approver, state=shown, template=template, before=before, limit=PAGE_SIZE
            )
            reviews = await self._service.reviews_for(approver) if shown == PENDING_STATE else []
            more = None
            if page.next_before is not None:
                more = "?" + urlencode(
                    {"state": shown, "before": repr(page.next_before), **_only(template)}
                )
            return self._page(
                "approvals_inbox.html",
                state,
                person,
                requests=[request_view(e) for e in page.entries],
                reviews=[request_view(e) for e in reviews],
                shown=shown,
                states=((PENDING_STATE, "Waiting for you"), (DECIDED_STATE, "Decided by you")),
                template_filter=template or "",
                more=more,
            )
        except SignInStop as stop:
            return stop.response

    # -- GET /approvals/{id} --------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            task_id = request.path_params["id"]
            body = await self._ask(self._service.task_for(task_id, self._approver(person)))
            entries = await self._service.history(task_id)
            view = request_view(body)
            done = request.query_params.get("done")
            return self._page(
                "approval_request.html",
                state,
                person,
                request=view,
                history=history(entries),
                done=done if done in _DONE else None,
                done_text=_DONE.get(done or ""),
                path=f"{INBOX_PATH}/{quote(view.id, safe='')}",
                durations=DecisionForm.DURATIONS,
            )
        except SignInStop as stop:
            return stop.response

    # -- POST /approvals/{id}/decision ----------------------------------------------------

    async def decide(self, request: Request) -> Response:
        try:
            form, person = await self._sign_in.posted(request)
            task_id = request.path_params["id"]
            wanted = read_decision(form, self._service.clock())
            if wanted.problem is not None:
                raise SignInStop(self._sign_in.error_page(wanted.problem, 400))
            await self._ask(
                self._service.decide(
                    task_id,
                    self._approver(person),
                    wanted.decision,
                    wanted.items,
                    wanted.justification,
                    wanted.approved_until,
                )
            )
            log.info(
                "access request %s: %s by %s on the pages", task_id, wanted.decision, person.name
            )
            return _back(f"{INBOX_PATH}/{quote(task_id, safe='')}", wanted.decision)
        except SignInStop as stop:
            return stop.response

    # -- POST /approvals/{id}/review -----------------------------------------------------

    async def review(self, request: Request) -> Response:
        try:
            form, person = await self._sign_in.posted(request)
            task_id = request.path_params["id"]
            note = _note(form, self._sign_in)
            await self._ask(self._service.review(task_id, self._approver(person), note))
            return _back(f"{INBOX_PATH}/{quote(task_id, safe='')}", "review")
        except SignInStop as stop:
            return stop.response

    # -- GET /approvals/granted, POST /approvals/granted/{id}/revoke ---------------------

    async def granted(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            approvals = await self._service.granted_by(self._approver(person))
            done = request.query_params.get("done")
            return self._page(
                "approvals_granted.html",
                state,
                person,
                approvals=[granted_view(a) for a in approvals],
                revoked=done == "revoke",
            )
        except SignInStop as stop:
            return stop.response

    async def revoke(self, request: Request) -> Response:
        try:
            form, person = await self._sign_in.posted(request)
            approval_id = request.path_params["id"]
            reason = _note(form, self._sign_in)
            await self._ask(self._service.revoke(approval_id, self._approver(person), reason))
            log.info("approval %s revoked by %s on the pages", approval_id, person.name)
            back = form.get("back")
            if back is not None and back.startswith(INBOX_PATH + "/arq_"):
                return _back(back, "revoke")
            return _back(GRANTED_PATH, "revoke")
        except SignInStop as stop:
            return stop.response

    # -- GET /my-requests, POST /my-requests/{id}/cancel ---------------------------------

    async def mine(self, request: Request) -> Response:
        try:
            state, person = await self._sign_in.signed_in(request)
            before = _number(request.query_params.get("before"))
            page = await self._service.requests_of(_subject(person), before, PAGE_SIZE)
            more = (
                None
                if page.next_before is None
                else "?" + urlencode({"before": repr(page.next_before)})
            )
            return self._page(
                "my_requests.html",
                state,
                person,
                requests=[my_request(e) for e in page.entries],
                more=more,
                cancelled=request.query_params.get("done") == "cancel",
            )
        except SignInStop as stop:
            return stop.response

    async def cancel(self, request: Request) -> Response:
        try:
            _, person = await self._sign_in.posted(request)
            task_id = request.path_params["id"]
            await self._ask(self._service.cancel_own(task_id, _subject(person)))
            log.info("access request %s cancelled by %s on the pages", task_id, person.name)
            return _back(MINE_PATH, "cancel")
        except SignInStop as stop:
            return stop.response

    # -- the named checks ---------------------------------------------------------------

    async def _ask(self, pending: Any) -> Any:
        """The service's answer; its refusal as an error page in its own words (written
        for the people who meet it; they name no secret)."""
        try:
            return await pending
        except AccessRequestProblem as problem:
            page = self._pages.render(
                "error.html",
                status=problem.status,
                title="This cannot be done",
                message=problem.detail,
            )
            raise SignInStop(page) from None

    def _approver(self, person: Person) -> Approver:
        return Approver(self._issuer, person.subject_type, person.name)

    def _page(self, page: str, state: BrowserState, person: Person, **context: Any) -> Response:
        return self._pages.render(
            page,
            person_name=person.name,
            csrf_token=self._sessions.csrf_token(state),
            inbox=INBOX_PATH,
            granted_path=GRANTED_PATH,
            mine_path=MINE_PATH,
            **context,
        )


_DONE = {
    "approve": "You approved.",
    "deny": "You denied.",
    "review": "You confirmed the emergency approval.",
    "revoke": "The approval is revoked.",
}


def _back(path: str, done: str) -> Response:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _subject(person: Person) -> dict[str, Any]:
    return {"type": person.subject_type, "id": person.name}


def _only(template: str | None) -> dict[str, str]:
    return {"template": template} if template else {}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) < 1e12 else None  # not NaN, a time


def _note(form: Form, sign_in: SignIn) -> str | None:
    note = (form.get("justification") or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise SignInStop(sign_in.error_page(f"A note has at most {MAX_NOTE} characters.", 400))
    return note
