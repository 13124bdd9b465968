"""The pages between `/authorize` and the redirect back: sign-in, consent, sign-out.

    GET  /interaction/{uid}                   sign-in page, or consent once signed in
    POST /interaction/{uid}/sign-in           CSRF → password (sign_in.SignIn) → session
    POST /interaction/{uid}/sign-in/upstream  CSRF → off to the organisation's provider
    POST /interaction/{uid}/consent           CSRF → signed in → used once → code (or, with
                                              direct deferral, a deferral code), or denied
    POST /sign-out                            CSRF → cookie cleared

An interaction belongs to the browser that started it (its cookie's browser id); from any
other browser its URL shows only an error page. Every form carries a CSRF token derived
from the session id, which sign-in rotates. A request with `acr_values` (a step-up,
`step_up`) needs a sign-in of one of them: a session without one signs in again first, and
when no method here can give one the client gets `unmet_authentication_requirements`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from ..authzen.errors import PDPError
from ..errors import AccessDenied, OAuthError
from ..oauth.clients import ClientRegistry
from ..oauth.form import Form
from ..store.contract import FrontDoorStore
from ..web.pages import Pages
from .authorization_codes import issue_code
from .authorization_request import AuthorizationRequest
from .authorization_response import origin_of, send_back, send_error_back
from .authorize_endpoint import FrontDoorConfig
from .consent import ConsentView
from .direct_deferral import AuthorizationDeferral
from .person import Person
from .pushed_requests import end_interaction, find_interaction
from .sessions import BrowserState, Sessions
from .sign_in import SignIn, SignInStop
from .sign_in_continuation import Continuation
from .step_up import UnmetAuthenticationRequirements, meets

log = logging.getLogger("bridge.front_door.interaction")


class Interactions:
    def __init__(
        self,
        config: FrontDoorConfig,
        store: FrontDoorStore,
        registry: ClientRegistry,
        sessions: Sessions,
        pages: Pages,
        sign_in: SignIn,
        consent: ConsentView,
    ) -> None:
        self._config = config
        self._store = store
        self._registry = registry
        self._sessions = sessions
        self._pages = pages
        self._sign_in = sign_in
        self._consent = consent
        # Installed by the deferral part when `front_door.direct_deferral` is on.
        self.direct_deferral: AuthorizationDeferral | None = None

    # -- GET /interaction/{uid} ---------------------------------------------------------

    async def show(self, request: Request) -> Response:
        try:
            uid, state, asked = await self._interaction(request)
            person = await self._sessions.person(state)
            if person is not None and meets(person, asked.acr_values):
                return await self._consent_page(uid, state, asked, person)
            if not self._sign_in.can_reach(asked.acr_values):
                error = UnmetAuthenticationRequirements("no sign-in here reaches the acr_values")
                return await self._sign_in.end_with_error(uid, state, error)
            return await self._sign_in.page(
                state,
                _continuation(uid, asked),
                client_name=asked.client_id,
                step_up=person is not None,
            )
        except SignInStop as stop:
            return stop.response

    # -- POST /interaction/{uid}/sign-in ------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        try:
            form = await self._sign_in.form(request)
            uid, state, asked = await self._interaction(request)
            self._check_csrf(state, form)
            return await self._sign_in.with_password(
                request, form, state, _continuation(uid, asked), asked.client_id
            )
        except SignInStop as stop:
            return stop.response

    # -- POST /interaction/{uid}/sign-in/upstream ---------------------------------------

    async def sign_in_upstream(self, request: Request) -> Response:
        try:
            form = await self._sign_in.form(request)
            uid, state, asked = await self._interaction(request)
            self._check_csrf(state, form)
            return await self._sign_in.to_provider(state, _continuation(uid, asked))
        except SignInStop as stop:
            return stop.response

    # -- POST /interaction/{uid}/consent ------------------------------------------------

    async def decide(self, request: Request) -> Response:
        try:
            form = await self._sign_in.form(request)
            uid, state, pending = await self._interaction(request)
            self._check_csrf(state, form)
            person = await self._sessions.person(state)
            if person is None:
                raise SignInStop(self._error("Your sign-in has ended. Start again.", 401))
            if not meets(person, pending.acr_values):
                # The consent page was not shown to this sign-in (`show`).
                raise SignInStop(self._error("This request needs you to sign in again.", 401))
            decision = form.get("decision")
            if decision not in ("approve", "decline"):
                raise SignInStop(self._error("Choose Allow or Decline.", 400))
            asked = await end_interaction(self._store, uid, state.browser_hash)
            if asked is None:
                raise SignInStop(self._error("This request was already answered or has expired."))
            if decision == "decline":
                response = self._error_back(asked, AccessDenied("the user declined"))
            else:
                response = await self._allowed(asked, person)
            self._sessions.write(response, replace(state, interaction=None))
            return response
        except SignInStop as stop:
            return stop.response

    async def _allowed(self, asked: AuthorizationRequest, person: Person) -> Response:
        """The authorization response to a consent: a code, or (DTR PR #47) a deferral."""
        if asked.deferral_hint and self.direct_deferral is not None:
            try:
                deferred = await self.direct_deferral.defer(asked, person)
            except PDPError as error:
                log.error("no decision for a direct deferral: %s", error)
                return self._error("The policy decision point could not decide. Try again.", 503)
            except OAuthError as error:
                return self._error_back(asked, error)
            if deferred is not None:
                return send_back(
                    self._pages,
                    asked.redirect_uri,
                    asked.response_mode,
                    {
                        "deferral_code": deferred.deferral_code,
                        "state": asked.state,
                        "expires_in": str(deferred.expires_in),
                        "interval": str(deferred.interval),
                        "iss": self._config.issuer,
                    },
                )
        code = await issue_code(self._store, asked, person, self._config.code_lifetime)
        return send_back(
            self._pages,
            asked.redirect_uri,
            asked.response_mode,
            {"code": code, "state": asked.state, "iss": self._config.issuer},
        )

    # -- POST /sign-out -----------------------------------------------------------------

    async def sign_out(self, request: Request) -> Response:
        try:
            form = await self._sign_in.form(request)
            state = self._sessions.read(request)
            if state is None:
                raise SignInStop(self._error("You are not signed in.", 400))
            self._check_csrf(state, form)
            await self._sessions.end(state)
        except SignInStop as stop:
            return stop.response
        response = self._pages.render("signed_out.html")
        self._sessions.clear(response)
        return response

    async def signed_in(self, request: Request) -> Response:
        state = self._sessions.read(request)
        person = await self._sessions.person(state) if state else None
        if state is None or person is None:
            return self._error("You are not signed in.", 401)
        return self._pages.render(
            "signed_in.html", person_name=person.name, csrf_token=self._sessions.csrf_token(state)
        )

    # -- the named checks ---------------------------------------------------------------

    async def _interaction(
        self, request: Request
    ) -> tuple[str, BrowserState, AuthorizationRequest]:
        uid = request.path_params["uid"]
        state = self._sessions.read(request)
        asked = await find_interaction(self._store, uid, state.browser_hash) if state else None
        if state is None or asked is None:
            raise SignInStop(
                self._error(
                    "This sign-in request has expired, was already answered, or was started in "
                    "another browser. Go back to the application and start again.",
                    400,
                )
            )
        return uid, state, asked

    def _check_csrf(self, state: BrowserState, form: Form) -> None:
        if not self._sessions.csrf_ok(state, form.get("csrf_token")):
            raise SignInStop(self._error("The form has expired. Go back and try again.", 403))

    async def _consent_page(
        self, uid: str, state: BrowserState, asked: AuthorizationRequest, person: Person
    ) -> Response:
        try:
            items = await self._consent.items(asked, person)
        except PDPError as error:
            log.error("no decision for the consent page: %s", error)
            return self._error("The policy decision point could not decide. Try again later.", 503)
        except OAuthError as error:
            # Checked at /authorize; a profile reloaded since may refuse what it took.
            return self._error_back(asked, error)
        return self._pages.render(
            "consent.html",
            action=f"/interaction/{uid}/consent",
            sign_out="/sign-out",
            client_name=asked.client_id,
            person_name=person.name,
            items=items,
            # DTR §5.2: the client can wait for approvals; the person is told so.
            deferred=asked.deferral_hint,
            csrf_token=self._sessions.csrf_token(state),
            # The consent form's answer redirects there (browsers check form-action on it).
            form_targets=[origin_of(asked.redirect_uri)],
        )

    def _error_back(self, asked: AuthorizationRequest, error: OAuthError) -> Response:
        """The error to the client's redirect URI (RFC 6749 §4.1.2.1), with state and iss."""
        return send_error_back(
            self._pages,
            self._config.issuer,
            asked.redirect_uri,
            asked.response_mode,
            asked.state,
            error,
        )

    def _error(self, message: str, status: int = 400) -> Response:
        return self._sign_in.error_page(message, status)


def _continuation(uid: str, asked: AuthorizationRequest) -> Continuation:
    return Continuation.to_interaction(uid, tuple(asked.acr_values))
