"""`GET` and `POST /authorize` (RFC 6749 §4.1.1): a short pipeline of named checks.

read the parameters → the client → a pushed request (`request_uri`, RFC 9126 §4: its
parameters only) or the redirect URI, registered exactly → [errors so far: a page, never a
redirect] → pushed requests required? → the request itself (response type and mode, PKCE,
RAR, scope, resource, dpop_jkt) → [errors: back to the redirect URI with state and iss] →
remember the request for this browser → on to sign-in and consent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import InvalidRequest, OAuthError
from ..oauth.clients import Client, ClientRegistry
from ..oauth.form import Form, read_form
from ..rar.profiles import ProfileSet
from ..store.contract import AuthorizationRequestStore
from ..web.pages import Pages
from .authorization_request import (
    AuthorizationRequest,
    read_authorization_request,
    redirect_target,
    response_mode_for_errors,
)
from .authorization_response import send_error_back
from .errors import InvalidRequestURI, NotRedirectable
from .pushed_requests import begin_interaction, take_pushed
from .sessions import Sessions

log = logging.getLogger("bridge.front_door.authorize")


@dataclass(frozen=True)
class FrontDoorConfig:
    issuer: str
    max_body_bytes: int
    max_authorization_details: int
    max_evaluations: int
    require_pushed_requests: bool
    request_uri_lifetime: float
    interaction_lifetime: float
    code_lifetime: float


class AuthorizeEndpoint:
    def __init__(
        self,
        config: FrontDoorConfig,
        registry: ClientRegistry,
        profiles: ProfileSet,
        store: AuthorizationRequestStore,
        sessions: Sessions,
        pages: Pages,
    ) -> None:
        self._config = config
        self._registry = registry
        self._profiles = profiles
        self._store = store
        self._sessions = sessions
        self._pages = pages

    async def handle(self, request: Request) -> Response:
        try:
            form = await self._parameters(request)
            if form.get("request_uri") is not None:
                asked = await self._pushed(form)
            else:
                client, redirect_uri = redirect_target(form, self._registry)
                try:
                    asked = self._checked(form, client, redirect_uri)
                except OAuthError as error:
                    return send_error_back(
                        self._pages,
                        self._config.issuer,
                        redirect_uri,
                        response_mode_for_errors(form),
                        form.get("state"),
                        error,
                    )
            return await self._begin(request, asked)
        except NotRedirectable as error:
            return self.error_page(error.message, error.status)
        except Exception:
            log.exception("authorization request failed")
            return self.error_page("The request could not be processed.", 500)

    def error_page(self, message: str, status: int = 400) -> Response:
        return self._pages.render(
            "error.html", status=status, title="This request cannot go on", message=message
        )

    async def _parameters(self, request: Request) -> Form:
        """GET: the query; POST: the form body (§3.1 lets the endpoint take both)."""
        try:
            if request.method == "POST":
                return await read_form(request, self._config.max_body_bytes)
            pairs = parse_qsl(request.url.query, keep_blank_values=True)
            return Form(pairs)
        except InvalidRequest as error:
            # A repeated client_id or redirect_uri leaves nothing to trust.
            raise NotRedirectable(f"The request is malformed: {error.description}.") from None

    async def _pushed(self, form: Form) -> AuthorizationRequest:
        """RFC 9126 §4: `client_id` and `request_uri`; every other parameter is ignored."""
        client_id = form.get("client_id")
        client = self._registry.get(client_id) if client_id is not None else None
        if client is None or not client.enabled:
            raise NotRedirectable("The application that sent you here is not known to the bridge.")
        request_uri = form.get("request_uri") or ""
        try:
            pushed = await take_pushed(self._store, request_uri, client.client_id)
        except InvalidRequestURI:
            raise NotRedirectable(
                "This request has expired or was already used. Go back to the application "
                "and start again."
            ) from None
        if pushed.redirect_uri not in client.redirect_uris:
            # Registered when pushed, removed since.
            raise NotRedirectable("The return address is no longer registered for this client.")
        return pushed

    def _checked(self, form: Form, client: Client, redirect_uri: str) -> AuthorizationRequest:
        if self._config.require_pushed_requests or client.require_pushed_authorization_requests:
            raise InvalidRequest("this client must push its authorization requests to /par")
        return read_authorization_request(
            form,
            client,
            redirect_uri,
            self._profiles,
            max_entries=self._config.max_authorization_details,
            max_evaluations=self._config.max_evaluations,
        )

    async def _begin(self, request: Request, asked: AuthorizationRequest) -> Response:
        state = self._sessions.read(request) or self._sessions.fresh()
        uid = await begin_interaction(
            self._store, asked, state.browser_hash, self._config.interaction_lifetime
        )
        response = RedirectResponse(
            f"/interaction/{uid}", status_code=303, headers={"Cache-Control": "no-store"}
        )
        self._sessions.write(response, replace(state, interaction=uid))
        return response
