"""Signing a person in, whichever ways the deployment offers: the local accounts' password
form, the organisation's OpenID Provider, or both.

    GET  /sign-in?next=/path   the sign-in page on its own (pages of the bridge send people here)
    POST /sign-in              password: CSRF → throttle → password → session → next
    POST /sign-in/upstream     CSRF → pending sign-in kept (sealed cookie) → 303 to the provider
    GET  /sign-in/callback     pending sign-in taken once → ID token checked → session → next

An authorization request's own sign-in page (/interaction/{uid}) runs the same checks with
the interaction as its `Continuation`; a person who declines at the provider there sends
`access_denied` back to the client, as a decline on the consent page does. When the request
asked for `acr_values` (a step-up, `step_up`), only the methods that can reach one are
offered, the provider is asked for them, and a sign-in that reached none of them sends
`unmet_authentication_requirements` back instead of going on to consent.
"""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import AccessDenied, InvalidRequest, OAuthError
from ..oauth.form import Form, read_form
from ..settings import Settings
from ..store.contract import FrontDoorStore
from ..upstream_signin import (
    CodeExchangeFailed,
    DiscoveryFailed,
    KeysUnavailable,
    ProviderRefused,
    SignedInPerson,
    UpstreamSignInError,
)
from ..web.pages import Pages
from .authorization_response import origin_of, send_error_back
from .pending_sign_in import PendingSignIns
from .person import Person
from .pushed_requests import end_interaction
from .sessions import BrowserState, Sessions, establish_session
from .sign_in_continuation import Continuation
from .sign_in_methods import SignInMethods
from .step_up import UnmetAuthenticationRequirements, local_password_reaches, meets

log = logging.getLogger("bridge.front_door.sign_in")

CALLBACK_PATH = "/sign-in/callback"
GENERIC_SIGN_IN_ERROR = "The user name or the password is not right."
THROTTLED = "Too many failed sign-ins. Wait a few minutes and try again."
PASSWORD_TOO_WEAK = "This application asks for a stronger sign-in than a password."
NO_PENDING = (
    "This sign-in was already finished, has expired, or was started in another browser. "
    "Start again."
)
# Not the person's doing: the provider cannot be reached (503), or its token endpoint did
# not turn the code into an ID token (502).
_PROVIDER_AWAY = (DiscoveryFailed, KeysUnavailable)


class SignInStop(Exception):
    """Answer with this page instead (a check refused)."""

    def __init__(self, response: Response) -> None:
        self.response = response


class SignIn:
    def __init__(
        self,
        settings: Settings,
        store: FrontDoorStore,
        sessions: Sessions,
        pages: Pages,
        methods: SignInMethods,
        pending: PendingSignIns,
    ) -> None:
        self._issuer = settings.issuer
        self._max_body_bytes = settings.limits.max_body_bytes
        self._callback_url = settings.server.public_url.rstrip("/") + CALLBACK_PATH
        self._store = store
        self._sessions = sessions
        self._pages = pages
        self._methods = methods
        self._pending = pending

    # -- the page -----------------------------------------------------------------------

    async def page(
        self,
        state: BrowserState,
        continuation: Continuation,
        *,
        client_name: str | None = None,
        error: str | None = None,
        username: str = "",
        status: int = 200,
        step_up: bool = False,
    ) -> Response:
        """The sign-in page, with the methods that can give what the continuation needs
        (`step_up`: the person is signed in, and signs in again for a stronger sign-in)."""
        upstream = self._methods.upstream
        password = self._methods.accounts and local_password_reaches(continuation.acr_values)
        return self._pages.render(
            "sign_in.html",
            status=status,
            # The provider's page is where the upstream form's answer redirects to.
            form_targets=await self._provider_origins(),
            client_name=client_name,
            csrf_token=self._sessions.csrf_token(state),
            error=error,
            username=username,
            next_path=None if continuation.interaction else continuation.next_path,
            password_action=continuation.password_action if password else None,
            step_up=step_up,
            upstream_action=continuation.upstream_action if upstream else None,
            upstream_name=upstream.display_name if upstream else None,
        )

    def can_reach(self, acr_values: list[str]) -> bool:
        """Whether a sign-in method here may give one of `acr_values`: a local password its
        own acr; the provider whatever it is asked for (checked when the person is back)."""
        password = self._methods.accounts is not None and local_password_reaches(acr_values)
        return password or self._methods.upstream is not None

    async def _provider_origins(self) -> list[str]:
        upstream = self._methods.upstream
        if upstream is None:
            return []
        origins = [origin_of(upstream.settings.issuer)]
        # Without the metadata the button shows an error page: the issuer's origin will do.
        with contextlib.suppress(DiscoveryFailed):
            origins.append(origin_of((await upstream.metadata()).authorization_endpoint))
        return origins

    # -- a password ---------------------------------------------------------------------

    async def with_password(
        self,
        request: Request,
        form: Form,
        state: BrowserState,
        continuation: Continuation,
        client_name: str | None = None,
    ) -> Response:
        accounts = self._methods.accounts
        if accounts is None:
            return self.error_page("This bridge does not sign people in with a password.", 404)
        if not local_password_reaches(continuation.acr_values):
            return await self.page(
                state, continuation, client_name=client_name, error=PASSWORD_TOO_WEAK, status=400
            )
        throttle = self._methods.throttle
        username = (form.get("username") or "").strip()
        password = form.get("password") or ""
        address = request.client.host if request.client else "unknown"
        if await throttle.refused(username, address):
            return await self.page(
                state,
                continuation,
                client_name=client_name,
                username=username,
                error=THROTTLED,
                status=429,
            )
        person = accounts.verify(username, password) if username and password else None
        if person is None:
            await throttle.failed(username, address)
            return await self.page(
                state,
                continuation,
                client_name=client_name,
                username=username,
                error=GENERIC_SIGN_IN_ERROR,
                status=401,
            )
        await throttle.succeeded(username)
        log.info("%s signed in (local account)", person.name)
        return await establish_session(
            request, person, interaction=continuation.interaction, then=continuation.next_path
        )

    # -- the organisation's provider ----------------------------------------------------

    async def to_provider(self, state: BrowserState, continuation: Continuation) -> Response:
        upstream = self._methods.upstream
        if upstream is None:
            return self.error_page("This bridge does not sign people in elsewhere.", 404)
        try:
            url, pending = await upstream.begin(
                self._callback_url, acr_values=continuation.acr_values
            )
        except UpstreamSignInError as error:
            log.warning("cannot send a person to the provider: %s", error)
            return self.error_page(error.safe_message, 503)
        response = RedirectResponse(url, status_code=303)
        self._pending.keep(response, pending, state.browser_hash, continuation)
        # The session cookie goes along: a first visit may have none yet.
        self._sessions.write(response, state)
        return response

    async def callback(self, request: Request) -> Response:
        upstream = self._methods.upstream
        if upstream is None:
            return self.error_page("This bridge does not sign people in elsewhere.", 404)
        state = self._sessions.read(request)
        returned = await self._pending.take(request, state.browser_hash) if state else None
        if returned is None:
            return self._without_pending(self.error_page(NO_PENDING, 400))
        query = request.query_params
        if len(query.keys()) != len(query.multi_items()):
            # RFC 6749 §3.1: no parameter twice; which one would be the provider's?
            return self._without_pending(self.error_page(NO_PENDING, 400))
        try:
            signed_in = await upstream.finish(returned.pending, dict(query))
        except ProviderRefused as refused:
            log.info("the provider did not sign a person in: %s", refused)
            if refused.declined and returned.continuation.interaction and state:
                return self._without_pending(
                    await self._declined(returned.continuation.interaction, state)
                )
            return self._without_pending(self.error_page(refused.safe_message, 400))
        except UpstreamSignInError as error:
            log.warning("a sign-in at the provider was refused: %s", error)
            status = (
                503
                if isinstance(error, _PROVIDER_AWAY)
                else 502
                if isinstance(error, CodeExchangeFailed)
                else 400
            )
            return self._without_pending(self.error_page(error.safe_message, status))
        person = person_of(signed_in)
        continuation = returned.continuation
        if not meets(person, continuation.acr_values):
            acr = person.acr or "no acr"
            log.info("%s signed in at %s with %s, not as asked", person.name, signed_in.issuer, acr)
            return self._without_pending(await self._unmet(continuation, state))
        log.info("%s signed in (at %s)", person.name, signed_in.issuer)
        return self._without_pending(
            await establish_session(
                request, person, interaction=continuation.interaction, then=continuation.next_path
            )
        )

    async def _declined(self, uid: str, state: BrowserState) -> Response:
        return await self.end_with_error(
            uid, state, AccessDenied("the user did not sign in at the identity provider")
        )

    async def _unmet(self, continuation: Continuation, state: BrowserState | None) -> Response:
        """The provider signed the person in, but not as the request asked (`acr_values`)."""
        error = UnmetAuthenticationRequirements("the sign-in did not reach the acr_values asked")
        if continuation.interaction is None or state is None:
            return self.error_page("The sign-in was not as strong as this page needs.", 403)
        return await self.end_with_error(continuation.interaction, state, error)

    async def end_with_error(self, uid: str, state: BrowserState, error: OAuthError) -> Response:
        """End the interaction `uid` and send `error` back to its client."""
        asked = await end_interaction(self._store, uid, state.browser_hash)
        if asked is None:
            return self.error_page(NO_PENDING, 400)
        return send_error_back(
            self._pages,
            self._issuer,
            asked.redirect_uri,
            asked.response_mode,
            asked.state,
            error,
        )

    def _without_pending(self, response: Response) -> Response:
        self._pending.clear(response)
        return response

    # -- the page on its own: GET and POST /sign-in, POST /sign-in/upstream -------------

    async def show(self, request: Request) -> Response:
        state = self._sessions.read(request) or self._sessions.fresh()
        continuation = Continuation.to_page(request.query_params.get("next"))
        if await self._sessions.person(state) is not None:
            return RedirectResponse(continuation.next_path, status_code=303)
        response = await self.page(state, continuation)
        self._sessions.write(response, state)
        return response

    async def post_password(self, request: Request) -> Response:
        try:
            form = await self.form(request)
            state = self.checked_state(request, form)
            continuation = Continuation.to_page(form.get("next"))
            return await self.with_password(request, form, state, continuation)
        except SignInStop as stop:
            return stop.response

    async def post_upstream(self, request: Request) -> Response:
        try:
            form = await self.form(request)
            state = self.checked_state(request, form)
            return await self.to_provider(state, Continuation.to_page(form.get("next")))
        except SignInStop as stop:
            return stop.response

    # -- the named checks ---------------------------------------------------------------

    async def form(self, request: Request) -> Form:
        try:
            return await read_form(request, self._max_body_bytes)
        except InvalidRequest:
            raise SignInStop(self.error_page("The form could not be read.", 400)) from None

    def checked_state(self, request: Request, form: Form) -> BrowserState:
        """The browser's state, when the form's CSRF token is this session's."""
        state = self._sessions.read(request)
        if state is None or not self._sessions.csrf_ok(state, form.get("csrf_token")):
            raise SignInStop(self.error_page("The form has expired. Go back and try again.", 403))
        return state

    async def signed_in(self, request: Request) -> tuple[BrowserState, Person]:
        """For a page of the bridge: the browser's session and who is signed in; else off
        to sign in, and back to this page (its path and query) after."""
        state = self._sessions.read(request)
        person = await self._sessions.person(state) if state else None
        if state is None or person is None:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInStop(
                RedirectResponse(f"/sign-in?next={quote(back, safe='')}", status_code=303)
            )
        return state, person

    async def posted(self, request: Request) -> tuple[Form, Person]:
        """For a page's form: the form, posted with this session's CSRF token by someone
        still signed in."""
        form = await self.form(request)
        state = self.checked_state(request, form)
        person = await self._sessions.person(state)
        if person is None:
            raise SignInStop(self.error_page("Your sign-in has ended. Sign in again.", 401))
        return form, person

    def error_page(self, message: str, status: int = 400) -> Response:
        return self._pages.render(
            "error.html", status=status, title="This request cannot go on", message=message
        )


def person_of(signed_in: SignedInPerson) -> Person:
    """The session's person for someone the provider signed in: the ID token's subject,
    with the configured claims as AuthZEN subject properties."""
    return Person(
        name=signed_in.name,
        subject_type=signed_in.subject_type,
        properties=dict(signed_in.properties),
        method="oidc",
        acr=signed_in.acr,
        amr=signed_in.amr or (),
        auth_time=signed_in.auth_time,
    )
