"""The front door's side of the store contract: authorization requests waiting for a person
(pushed ones, RFC 9126, and interactions in progress), authorization codes, the counters
that throttle sign-in attempts, and the sessions someone signed out of.

Everything here is shared by replicas: a request pushed to one replica is used at another,
a code is redeemed anywhere once, and a password guessed at five replicas counts five times.
Request URIs, interaction ids and codes are looked up by hash; a dump of these tables gives
no usable credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

AuthorizationRequestKind = Literal["pushed", "interaction"]


@dataclass(frozen=True, slots=True)
class AuthorizationRequestRecord:
    id_hash: str  # SHA-256 (hex) of the request_uri's reference or of the interaction id
    kind: AuthorizationRequestKind
    client_id: str
    parameters: str  # JSON: the checked authorization request
    created_at: float
    expires_at: float
    # Interactions: SHA-256 of the browser's id, so that only that browser continues one.
    browser_hash: str | None = None
    used_at: float | None = None


class AuthorizationRequestStore(Protocol):
    async def save_authorization_request(self, record: AuthorizationRequestRecord) -> None: ...

    async def find_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        """The request when it is unused and has not expired."""
        ...

    async def use_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        """Mark the request used, once: one compare-and-set. Returns it when this call used
        it (unused, unexpired); None when it is unknown, expired or already used — a pushed
        `request_uri` is single use (RFC 9126 §4), and so is a consent decision."""
        ...


@dataclass(frozen=True, slots=True)
class AuthorizationCodeRecord:
    code_hash: str  # SHA-256 (hex) of the code
    client_id: str
    grant: str  # JSON: who, redirect_uri, code_challenge, dpop_jkt, what was consented
    issued_at: float
    expires_at: float
    used_at: float | None = None
    reused_at: float | None = None
    # What the first redemption issued, revoked when the code comes back (RFC 6749 §4.1.2).
    refresh_family_id: str | None = None
    access_token_jti: str | None = None
    access_token_expires_at: float | None = None


CodeUse = Literal["first", "again"]


class AuthorizationCodeStore(Protocol):
    async def save_authorization_code(self, record: AuthorizationCodeRecord) -> None: ...

    async def use_authorization_code(
        self, code_hash: str, now: float
    ) -> tuple[AuthorizationCodeRecord, CodeUse] | None:
        """Redeem a code. `first`: this call used it (it was unused and unexpired). `again`:
        it had been used before; the code is marked reused, and the record says what the
        first use issued. None: unknown, or expired unused."""
        ...

    async def record_code_tokens(
        self,
        code_hash: str,
        *,
        refresh_family_id: str | None,
        access_token_jti: str,
        access_token_expires_at: float,
    ) -> bool:
        """Remember what the first redemption issued. False when the code was presented
        again meanwhile: the caller revokes what it has just issued."""
        ...


class LoginThrottle(Protocol):
    async def login_failures(self, key: str, now: float) -> int:
        """Failed sign-ins counted for `key` in its current window (0 when it has ended)."""
        ...

    async def add_login_failure(self, key: str, now: float, window_seconds: float) -> int:
        """Count one failed sign-in for `key`, atomically; a window that has ended starts
        again at one. Returns the count in the window."""
        ...

    async def clear_login_failures(self, key: str) -> None: ...


class EndedSessions(Protocol):
    """Sessions live in signed cookies; sign-out records the session's id (hashed) here
    until the session would have ended, so a copy of the cookie is refused at every
    replica."""

    async def end_session(self, session_hash: str, until: float) -> None: ...

    async def session_ended(self, session_hash: str, now: float) -> bool: ...


class FrontDoorStore(
    AuthorizationRequestStore, AuthorizationCodeStore, LoginThrottle, EndedSessions, Protocol
):
    async def purge_front_door(self, now: float) -> None:
        """Delete expired requests, codes, throttle windows and ended sessions
        (housekeeping). A used code is kept until it expires, so a second use within its
        life still revokes."""
        ...
