"""Who is calling the access request endpoints.

Requesters are the default store's PEPs and authenticate exactly as they do for the AuthZEN
API (`stores.default.auth`); the requester id a task is bound to is then derived from the
credential: `pep:anonymous` when the store asks for no authentication, `pep:key-<digest
prefix>` for an API key, `pep:<sub>` for a bearer JWT.

Approvers present bearer JWTs of `access_requests.approver_issuer` (one of
`oauth.trusted_issuers`) with `aud` = `access_requests.approver_audience` (default: the
bridge's issuer). Anything else is 401 with `WWW-Authenticate: Bearer` (RFC 6750).
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from ..authzen.pep_auth import PEPAuthenticator
from ..jose.compact import MalformedJWS, parse_compact
from ..jose.trusted_issuers import TrustedIssuers, UntrustedToken
from ..settings import PEPAuthSettings
from .approvers import Approver
from .problems import Unauthorized
from .service import pep_requester

ANONYMOUS = "anonymous"


class RequesterAuthenticator:
    def __init__(self, settings: PEPAuthSettings, realm: str) -> None:
        self._auth = PEPAuthenticator(settings, realm)
        self._settings = settings
        self._keys = {_digest(k.get_secret_value()) for k in settings.api_keys}

    async def identify(self, request: Request) -> str:
        """The requester id; raises the authenticator's `Unauthorized` (an AuthZENError)."""
        await self._auth.authenticate(request)
        if not self._settings.enabled:
            return pep_requester(ANONYMOUS)
        header = self._settings.api_key_header.lower()
        credential = _credential(request.headers.get(header))
        if credential is None and header != "authorization":
            credential = _credential(request.headers.get("authorization"))
        assert credential is not None  # authenticate() accepted one
        digest = _digest(credential)
        if digest in self._keys:
            return pep_requester("key-" + digest[:16])
        sub = _claims(credential).get("sub")
        return pep_requester(sub if isinstance(sub, str) and sub else "jwt-" + digest[:16])


class ApproverAuthenticator:
    def __init__(
        self, issuers: TrustedIssuers, approver_issuer: str | None, audience: str, realm: str
    ) -> None:
        self._issuers = issuers
        self._issuer = approver_issuer
        self._audience = audience
        self._realm = realm

    async def identify(self, request: Request) -> Approver:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._refuse(None)
        if self._issuer is None:
            raise self._refuse("invalid_token")
        try:
            verified = await self._issuers.verify(token.strip(), audiences={self._audience})
        except UntrustedToken:
            raise self._refuse("invalid_token") from None
        if verified.issuer.issuer != self._issuer:
            raise self._refuse("invalid_token")
        return Approver(verified.issuer.issuer, verified.issuer.subject_type, verified.sub)

    def _refuse(self, error: str | None) -> Unauthorized:
        challenge = f'Bearer realm="{self._realm}"'
        if error:
            challenge += f', error="{error}"'
        return Unauthorized(
            "an approver's bearer token is required", headers={"WWW-Authenticate": challenge}
        )


def _credential(value: str | None) -> str | None:
    """As the PEP authenticator reads it: raw, or `Bearer <x>`."""
    if not value:
        return None
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return value.strip() or None


def _claims(token: str) -> dict[str, object]:
    """The payload of a JWT the PEP authenticator has already verified."""
    try:
        return parse_compact(token).payload
    except MalformedJWS:
        return {}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
