"""What the bridge keeps while a person is away at the organisation's OpenID Provider.

The pending sign-in (its `state`, `nonce` and PKCE verifier) and where the person goes once
signed in travel in a cookie of their own, sealed with AES-GCM under a key derived from the
key-encryption key: the browser carries it but cannot read the verifier, and every replica
opens it. It is bound to the browser's session cookie (its browser id), and its `state` is
recorded in the store's replay cache when the person comes back, so a copied cookie and
callback URL get nowhere a second time, on any replica.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from starlette.requests import Request
from starlette.responses import Response

from ..jose.sealing import seal, unseal
from ..store.contract import ReplayCache
from ..upstream_signin import PendingSignIn
from .sign_in_continuation import Continuation

COOKIE = "bridge_sign_in"
SECURE_COOKIE = "__Host-bridge_sign_in"
_PURPOSE = "upstream sign-in pending"
_REPLAY_NAMESPACE = "upstream-sign-in-state"
_MAX_COOKIE_BYTES = 3800


@dataclass(frozen=True)
class Returned:
    """A pending sign-in the browser brought back, taken (it serves once)."""

    pending: PendingSignIn
    continuation: Continuation


class PendingSignIns:
    def __init__(self, kek: bytes, replay: ReplayCache, *, secure: bool, lifetime: float) -> None:
        self._key = hmac.new(kek, b"upstream-sign-in-pending", hashlib.sha256).digest()
        self._replay = replay
        self._secure = secure
        self._lifetime = lifetime
        self.cookie_name = SECURE_COOKIE if secure else COOKIE

    def keep(
        self,
        response: Response,
        pending: PendingSignIn,
        browser_hash: str,
        continuation: Continuation,
    ) -> None:
        sealed = seal(
            self._key,
            _PURPOSE,
            {
                "pending": pending.to_dict(),
                "browser": browser_hash,
                "continuation": continuation.as_json(),
            },
        )
        response.set_cookie(
            self.cookie_name,
            base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii"),
            max_age=int(self._lifetime),
            path="/",
            secure=self._secure,
            httponly=True,
            # The provider sends the person back with a top-level GET: Lax cookies go along.
            samesite="lax",
        )

    async def take(self, request: Request, browser_hash: str) -> Returned | None:
        """The pending sign-in this browser started, once; None when there is none, it is
        not this browser's, or it was already used."""
        raw = request.cookies.get(self.cookie_name)
        if raw is None or len(raw) > _MAX_COOKIE_BYTES:
            return None
        try:
            sealed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            data = unseal(self._key, _PURPOSE, sealed)
            pending = PendingSignIn.from_dict(data["pending"])
            continuation = Continuation.from_json(data["continuation"])
            browser = data["browser"]
        except (InvalidTag, binascii.Error, json.JSONDecodeError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(browser, str) or not hmac.compare_digest(browser, browser_hash):
            return None
        expires_at = pending.created_at + self._lifetime
        if not await self._replay.use_once(_REPLAY_NAMESPACE, pending.state, expires_at):
            return None
        return Returned(pending, continuation)

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", secure=self._secure, httponly=True, samesite="lax"
        )
