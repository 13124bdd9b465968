"""PEP authentication for a store's AuthZEN API: API keys and bearer JWTs.

The API does not define PEP authentication; these are the two forms operators ask for. Keys
are kept only as SHA-256 digests and compared in constant time. A failure answers 401 with
`WWW-Authenticate`; for a bearer JWT whose signature verified, the answer says which check
failed (expired, audience, issuer), so the PEP's operator can fix it; an unknown key or a
token that does not verify says only that.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request

from ..jose.compact import parse_compact
from ..jose.jwks import JWKSError, JWKSource
from ..settings import PEPAuthSettings
from .errors import Unauthorized

log = logging.getLogger("bridge.authzen.auth")


class PEPAuthenticator:
    def __init__(self, settings: PEPAuthSettings, realm: str) -> None:
        self.enabled = settings.enabled
        self._realm = realm
        self._header = settings.api_key_header.lower()
        self._key_digests = [_digest(k.get_secret_value()) for k in settings.api_keys]
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience or realm
        self._algorithms = list(settings.jwt_algorithms)
        self._keys: JWKSource | None = None
        if settings.jwt_issuer:
            self._keys = JWKSource(
                jwks=settings.jwks, uri=str(settings.jwks_uri) if settings.jwks_uri else None
            )

    async def authenticate(self, request: Request) -> None:
        """Return when the caller is an accepted PEP; raise `Unauthorized` otherwise."""
        if not self.enabled:
            return
        credential = _credential(request.headers.get(self._header))
        if credential is None and self._header != "authorization":
            credential = _credential(request.headers.get("authorization"))
        if credential is None:
            raise self._refuse(None, "PEP authentication required")
        if self._key_digests and self._matches_key(credential):
            return
        if self._keys is not None and credential.count(".") == 2:
            await self._verify_jwt(credential)
            return
        raise self._refuse("invalid_token", "not an accepted API key or bearer token")

    def _matches_key(self, credential: str) -> bool:
        given = _digest(credential)
        # Compare against every key so the time taken does not say which one came close.
        return sum(hmac.compare_digest(given, d) for d in self._key_digests) > 0

    async def _verify_jwt(self, token: str) -> None:
        assert self._keys is not None and self._issuer is not None
        try:
            kid = parse_compact(token).header.get("kid")
            keys = await self._keys.key_set(kid if isinstance(kid, str) else None)
            decoded = jwt.decode(token, keys, algorithms=self._algorithms)
        except JWKSError as exc:
            log.warning("PEP token not checked: %s", exc)
            raise self._refuse("invalid_token", "the PEP token cannot be checked now") from None
        except (JoseError, ValueError, UnicodeError):
            raise self._refuse("invalid_token", "the token's signature does not verify") from None
        try:
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise self._refuse("invalid_token", _failed_check(exc, self._audience)) from None

    def _refuse(self, error: str | None, description: str) -> Unauthorized:
        challenge = f'Bearer realm="{self._realm}"'
        if error:
            # RFC 6750 §3: error_description has no `"` or `\\`.
            text = "".join(ch for ch in description if ch not in '"\\' and " " <= ch <= "~")
            challenge += f', error="{error}", error_description="{text}"'
        return Unauthorized(description, headers={"WWW-Authenticate": challenge})


def _failed_check(error: JoseError, audience: str) -> str:
    claim = getattr(error, "claim", None)
    if error.error == "expired_token":
        return "the token has expired"
    if error.error == "missing_claim":
        return f"the token has no {claim} claim"
    if claim == "aud":
        return f"the token's audience is not {audience}"
    if claim == "iss":
        return "the token's issuer is not the PEPs' issuer"
    return f"the token's {claim or 'claims'} did not pass the checks"


def _credential(value: str | None) -> str | None:
    """The key or token in a header: raw (as the interop clients send it) or `Bearer <x>`."""
    if not value:
        return None
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return value.strip() or None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()
