"""The first leg: what the bridge keeps while the person is at the provider, and the URL
that sends them there (authorization code flow with PKCE S256, `state` and `nonce`).

`state` ties the answer to the browser that started the sign-in (the caller keeps the
pending sign-in in that browser's server-side session), `nonce` ties the ID token to it, and
the PKCE verifier ties the code to it: only the challenge leaves the bridge, in the URL;
the verifier goes to the provider's token endpoint only, over the back channel.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# 32 random bytes each: 256 bits, as RFC 7636 §7.1 recommends for the verifier.
_RANDOM_BYTES = 32
_FIELDS = ("issuer", "state", "nonce", "code_verifier", "redirect_uri", "created_at")


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in under way. Keep it server-side (in the session), never in a URL or cookie
    the browser can read: `code_verifier` is a secret until the code is exchanged."""

    issuer: str  # the provider it was started at
    state: str
    nonce: str
    code_verifier: str = field(repr=False)  # kept out of logs and tracebacks
    redirect_uri: str  # sent again, identical, with the code (RFC 6749 §4.1.3)
    created_at: float  # seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, for a session store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingSignIn:
        """Back from `to_dict`; `ValueError` when `data` is not one."""
        if set(data) != set(_FIELDS):
            raise ValueError("not a pending sign-in")
        created_at = data["created_at"]
        strings = [data[name] for name in _FIELDS if name != "created_at"]
        if not all(isinstance(value, str) and value for value in strings):
            raise ValueError("not a pending sign-in")
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise ValueError("not a pending sign-in")
        return cls(
            issuer=data["issuer"],
            state=data["state"],
            nonce=data["nonce"],
            code_verifier=data["code_verifier"],
            redirect_uri=data["redirect_uri"],
            created_at=float(created_at),
        )


def new_pending(issuer: str, redirect_uri: str, now: float) -> PendingSignIn:
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        # The caller's mistake, not the person's: RFC 6749 §3.1.2 wants an absolute URI.
        raise ValueError("the callback URL must be an absolute http(s) URL without fragment")
    return PendingSignIn(
        issuer=issuer,
        state=secrets.token_urlsafe(_RANDOM_BYTES),
        nonce=secrets.token_urlsafe(_RANDOM_BYTES),
        code_verifier=secrets.token_urlsafe(_RANDOM_BYTES),  # 43 characters of [A-Za-z0-9_-]
        redirect_uri=redirect_uri,
        created_at=now,
    )


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    scope: str,
    pending: PendingSignIn,
    acr_values: Sequence[str] = (),
) -> str:
    """Where to send the person: the provider's authorization endpoint with the request;
    `acr_values` (Core §3.1.2.1) when a sign-in of one of those classes is needed."""
    parts = urlsplit(endpoint)
    # The endpoint may carry a query of its own (RFC 6749 §3.1), kept; ours wins on a clash.
    ours = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": pending.redirect_uri,
        "scope": scope,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": code_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
    }
    if acr_values:
        ours["acr_values"] = " ".join(acr_values)
    theirs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode([*theirs, *ours.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
