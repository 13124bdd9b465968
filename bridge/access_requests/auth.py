"""Who is calling the access request endpoints.

Requesters are the default store's PEPs and authenticate exactly as they do for the AuthZEN
API (`stores.default.auth`); the requester id a task is bound to is then derived from the
credential: `pep:key-<digest prefix>` for an API key, `pep:<sub>` for a bearer JWT (whose
`sub` and `act` claims are what the caller proves of who acts, `actors`). When the
store asks for no authentication, requesters are refused unless the deployment allows
anonymous ones (`access_requests.allow_anonymous_requesters`, local demos): they are then
all `pep:anonymous`.

Approvers present bearer JWTs of `access_requests.approver_issuer` (one of
`oauth.trusted_issuers`) with `aud` = `access_requests.approver_audience` (default: the
approver API's URL), an audience no subject token or assertion is accepted with, so that a
token a client holds for token exchange never opens the approver API, and an approver's token
is never exchanged. Anything else is 401 with `WWW-Authenticate: Bearer` (RFC 6750).
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from ..authzen.errors import Unauthorized as AuthZENUnauthorized
from ..authzen.pep_auth import PEPAuthenticator
from ..jose.compact import MalformedJWS, parse_compact
from ..jose.trusted_issuers import TrustedIssuers, UntrustedToken
from ..settings import PEPAuthSettings
from .actors import ActorProof
from .approvers import Approver
from .problems import Unauthorized
from .service import pep_requester

ANONYMOUS = "anonymous"


class RequesterAuthenticator:
    def __init__(
        self, settings: PEPAuthSettings, realm: str, *, allow_anonymous: bool = False
    ) -> None:
        """`allow_anonymous`: with no PEP authentication configured, every caller is the one
        requester `pep:anonymous` (and may read and cancel what any other caller filed);
        otherwise such a store refuses requesters."""
        self._auth = PEPAuthenticator(settings, realm)
        self._settings = settings
        self._allow_anonymous = allow_anonymous
        self._realm = realm
        self._keys = {_digest(k.get_secret_value()) for k in settings.api_keys}

    async def identify(self, request: Request) -> str:
        """The requester id; raises the authenticator's `Unauthorized` (an AuthZENError)."""
        return (await self.caller(request))[0]

    async def caller(self, request: Request) -> tuple[str, ActorProof | None]:
        """The requester id, and what its credential proves of who acts (a bearer JWT's
        `sub` and `act`, the Actor profile); None for an API key or no credential."""
        await self._auth.authenticate(request)
        if not self._settings.enabled:
            if not self._allow_anonymous:
                raise AuthZENUnauthorized(
                    "access requests need an authenticated requester: configure "
                    "stores.default.auth (or access_requests.allow_anonymous_requesters, "
                    "for a local demo)",
                    headers={"WWW-Authenticate": f'Bearer realm="{self._realm}"'},
                )
            return pep_requester(ANONYMOUS), None
        header = self._settings.api_key_header.lower()
        credential = _credential(request.headers.get(header))
        if credential is None and header != "authorization":
            credential = _credential(request.headers.get("authorization"))
        assert credential is not None  # authenticate() accepted one
        digest = _digest(credential)
        if digest in self._keys:
            return pep_requester("key-" + digest[:16]), None
        claims = _claims(credential)
        sub = claims.get("sub")
        requester = pep_requester(sub if isinstance(sub, str) and sub else "jwt-" + digest[:16])
        return requester, ActorProof.of_claims(claims)


class ApproverAuthenticator:
    def __init__(
        self,
        issuers: TrustedIssuers,
        approver_issuer: str | None,
        audience: str,
        realm: str,
        *,
        subject_audiences: frozenset[str] = frozenset(),
    ) -> None:
        """`subject_audiences`: where the bridge accepts subject tokens and assertions; a
        token that names one of them is never an approver's."""
        self._issuers = issuers
        self._issuer = approver_issuer
        self._audience = audience
        self._subject_audiences = subject_audiences
        self._realm = realm

    async def identify(self, request: Request) -> Approver:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._refuse(None, "an approver's bearer token is required")
        if self._issuer is None:
            raise self._refuse("invalid_token", "no approver issuer is configured")
        try:
            verified = await self._issuers.verify(
                token.strip(),
                audiences={self._audience},
                refused_audiences=self._subject_audiences,
            )
        except UntrustedToken as exc:
            raise self._refuse("invalid_token", f"the approver token is refused: {exc}") from None
        if verified.issuer.issuer != self._issuer:
            raise self._refuse("invalid_token", "the token is not from the approvers' issuer")
        return Approver(verified.issuer.issuer, verified.issuer.subject_type, verified.sub)

    def _refuse(self, error: str | None, description: str) -> Unauthorized:
        challenge = f'Bearer realm="{self._realm}"'
        if error:
            # RFC 6750 §3: the challenge says which check failed too.
            challenge += f', error="{error}", error_description="{_quotable(description)}"'
        return Unauthorized(description, headers={"WWW-Authenticate": challenge})


def _quotable(text: str) -> str:
    return "".join(ch for ch in text if ch not in '"\\' and " " <= ch <= "~")


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
