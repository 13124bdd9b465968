"""The browser's state at the bridge: one signed cookie, no server-side session table.

The cookie holds a random browser id (which binds interactions in progress to this browser),
a random session id (which the CSRF token is derived from), the interaction the browser is
in, and, once someone signed in, the person and when the session ends. It is signed with a
key derived from the key-encryption key, so every replica reads it; `HttpOnly`,
`SameSite=Lax`, `Secure` (and the `__Host-` prefix) when the public URL is https.

Sign-in rotates the session id (a cookie planted before sign-in never becomes a signed-in
session: session fixation); the lifetime is bounded from sign-in and not extended by use.
Sign-out clears the cookie and records the session id (hashed) in the store until the
session would have ended, so a copy of the cookie is refused by every replica.

The seam for sign-in methods is `establish_session(request, person)`: a method that has
verified who the person is (a password, an upstream ID token) calls it and returns its
answer, which sets the new cookie and continues the interaction (usually to consent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..store.contract import EndedSessions
from .person import Person
from .sign_in_continuation import SIGNED_IN_PATH, local_path

COOKIE = "bridge_session"
SECURE_COOKIE = "__Host-bridge_session"  # RFC 6265bis: Secure, Path=/, no Domain
# Browsers keep cookies up to about 4 KB; anything longer was not written by us.
_MAX_COOKIE_BYTES = 3800


@dataclass(frozen=True)
class BrowserState:
    browser_id: str
    session_id: str
    interaction: str | None = None
    person: Person | None = None
    signed_in_until: float | None = None

    def signed_in(self, now: float) -> Person | None:
        if self.person is None or self.signed_in_until is None or self.signed_in_until <= now:
            return None
        return self.person

    @property
    def browser_hash(self) -> str:
        return hashlib.sha256(self.browser_id.encode()).hexdigest()


class Sessions:
    def __init__(
        self,
        key: bytes,
        ended: EndedSessions,
        *,
        secure: bool,
        session_lifetime: float,
        state_lifetime: float,
    ) -> None:
        self._key = key
        self._ended = ended
        self.secure = secure
        self.cookie_name = SECURE_COOKIE if secure else COOKIE
        self._session_lifetime = session_lifetime
        self._state_lifetime = state_lifetime

    # -- reading and writing the cookie ---------------------------------------------------

    def read(self, request: Request) -> BrowserState | None:
        raw = request.cookies.get(self.cookie_name)
        if raw is None or len(raw) > _MAX_COOKIE_BYTES or "." not in raw:
            return None
        body, _, mac = raw.rpartition(".")
        if not hmac.compare_digest(_b64(self._mac(body.encode())), mac):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            if data["exp"] <= time.time():
                return None
            person = data.get("person")
            return BrowserState(
                browser_id=str(data["b"]),
                session_id=str(data["s"]),
                interaction=data.get("i"),
                person=Person.from_json(person) if isinstance(person, dict) else None,
                signed_in_until=data.get("until"),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def fresh(self) -> BrowserState:
        return BrowserState(secrets.token_urlsafe(16), secrets.token_urlsafe(16))

    def write(self, response: Response, state: BrowserState) -> None:
        now = time.time()
        expires = state.signed_in_until or now + self._state_lifetime
        data: dict[str, Any] = {"b": state.browser_id, "s": state.session_id, "exp": expires}
        if state.interaction is not None:
            data["i"] = state.interaction
        if state.person is not None:
            data["person"] = state.person.as_json()
            data["until"] = state.signed_in_until
        body = _b64(json.dumps(data, separators=(",", ":")).encode())
        response.set_cookie(
            self.cookie_name,
            f"{body}.{_b64(self._mac(body.encode()))}",
            max_age=max(1, int(expires - now)),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    # -- what the state allows --------------------------------------------------------------

    async def person(self, state: BrowserState) -> Person | None:
        """Who is signed in with this state: nobody once the session has ended (its time is
        over, or someone signed out with it)."""
        now = time.time()
        person = state.signed_in(now)
        if person is None or await self._ended.session_ended(_session_hash(state), now):
            return None
        return person

    async def end(self, state: BrowserState) -> None:
        if state.signed_in_until is not None:
            await self._ended.end_session(_session_hash(state), state.signed_in_until)

    def signed_in_state(self, state: BrowserState, person: Person) -> BrowserState:
        """The state after sign-in: a new session id (so a new CSRF token), same browser."""
        return replace(
            state,
            session_id=secrets.token_urlsafe(16),
            person=person,
            signed_in_until=time.time() + self._session_lifetime,
        )

    def csrf_token(self, state: BrowserState) -> str:
        return _b64(self._mac(b"csrf|" + state.session_id.encode()))

    def csrf_ok(self, state: BrowserState, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(state), token)

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


def _session_hash(state: BrowserState) -> str:
    return hashlib.sha256(state.session_id.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


async def establish_session(
    request: Request,
    person: Person,
    *,
    interaction: str | None = None,
    then: str | None = None,
) -> Response:
    """The person is now signed in at this browser: rotate the session, remember them, and
    continue an interaction (to consent) or go on to `then`, a path on the bridge.

    Every sign-in method ends here, after it has verified the person, e.g.

        person = Person(name=claims["sub"], subject_type="user", properties={...},
                        method="oidc")
        return await establish_session(request, person)

    `interaction` names the interaction to continue when the method knows it (the sign-in
    forms post to their own). With neither, the browser goes on with the interaction its
    cookie names, else to the page that says who is signed in.
    """
    sessions: Sessions = request.app.state.front_door_sessions
    state = sessions.read(request) or sessions.fresh()
    state = sessions.signed_in_state(state, person)
    if interaction is not None:
        state = replace(state, interaction=interaction)
        target = f"/interaction/{interaction}"
    elif then is not None:
        target = local_path(then)
    elif state.interaction is not None:
        target = f"/interaction/{state.interaction}"
    else:
        target = SIGNED_IN_PATH
    response = RedirectResponse(target, status_code=303)
    sessions.write(response, state)
    return response
