"""Client authentication at the token, introspection and revocation endpoints.

One request uses exactly one method (RFC 6749 §2.3), and it must be the method the client
registered: a client registered for `private_key_jwt` cannot fall back to a leaked secret.
Unknown, disabled and wrong-credential clients all get the same `invalid_client` text, and an
unknown client's secret is still hashed, so neither the answer nor its timing says whether a
`client_id` exists. Secrets and assertions are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard
from urllib.parse import unquote_plus

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..errors import InvalidClient, InvalidRequest
from ..jose.compact import MalformedJWS, parse_compact
from ..jose.jwks import JWKSError, JWKSource
from ..store.contract import ReplayCache
from .clients import Client, hash_secret, verify_secret

log = logging.getLogger("bridge.oauth.client_auth")

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The form parameters client authentication reads (RFC 6749 §2.3.1, RFC 7523 §2.2).
CLIENT_AUTH_PARAMETERS = frozenset(
    {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
)
# Asymmetric only: a shared-secret (HS*) assertion would need the secret stored in clear.
ASSERTION_ALGORITHMS = (
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512", "EdDSA", "Ed25519", "Ed448",
)  # fmt: skip
MAX_ASSERTION_LENGTH = 16_384
FAILED = "client authentication failed"
# Hashed against when the client is unknown, so that path costs what a real check costs.
_DUMMY_HASH = hash_secret("no such client")


class ClientLookup(Protocol):
    """What authentication needs of the registry (`ClientRegistry` is one)."""

    def get(self, client_id: str) -> Client | None: ...


class _LargeKeyRegistry(jws.JWSRegistry):
    # joserfc's defaults (512-byte header, 1024-byte signature) refuse RSA keys over 4096 bits.
    max_header_length = 8192
    max_signature_length = 4096
    max_payload_length = 16_384


_REGISTRY = _LargeKeyRegistry(algorithms=ASSERTION_ALGORITHMS, strict_check_header=False)


class ClientAuthenticator:
    """Authenticates clients against the registry; one instance serves all endpoints.

    `issuer` and `token_endpoint` are the audiences a client assertion may name; `http` is
    used to fetch `jwks_uri` key sets (a client of its own per fetch when None).
    """

    def __init__(
        self,
        registry: ClientLookup,
        replay: ReplayCache,
        issuer: str,
        token_endpoint: str,
        http: httpx.AsyncClient | None = None,
        *,
        leeway_seconds: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._replay = replay
        self._issuer = issuer
        self._audiences = frozenset({issuer, token_endpoint})
        self._http = http
        self._leeway = leeway_seconds
        self._clock = clock
        self._sources: dict[str, tuple[str, JWKSource]] = {}

    async def authenticate(self, headers: Mapping[str, str], form: Mapping[str, str]) -> Client:
        """The client that sent the request; raises `InvalidClient` or `InvalidRequest`.

        `headers` should be case-insensitive (Starlette's are); `form` holds each parameter
        once (the caller refuses repeated parameters, RFC 6749 §3.2).
        """
        basic = _basic_header(headers)
        by_post = "client_secret" in form
        by_jwt = "client_assertion" in form or "client_assertion_type" in form
        if (basic is not None) + by_post + by_jwt > 1:
            raise InvalidRequest("use exactly one client authentication method")
        if basic is not None:
            return self._basic(basic, form)
        if by_post:
            client_id = form.get("client_id")
            if not client_id:
                raise InvalidRequest("client_secret_post needs client_id")
            return self._secret(client_id, form["client_secret"], "client_secret_post", None)
        if by_jwt:
            return await self._assertion(form)
        return self._public(form.get("client_id"))

    def _basic(self, credentials: str, form: Mapping[str, str]) -> Client:
        challenge = _challenge(self._issuer)
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        raw_id, sep, raw_secret = decoded.partition(":")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if not sep or not client_id:
            raise InvalidClient(FAILED, status=401, headers=challenge)
        client = self._secret(client_id, secret, "client_secret_basic", challenge)
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
        return client

    def _secret(
        self, client_id: str, secret: str, method: str, challenge: dict[str, str] | None
    ) -> Client:
        client = self._registry.get(client_id)
        hashed = client.secret_hash if client and client.secret_hash else _DUMMY_HASH
        matches = verify_secret(secret, hashed)
        if not matches or client is None or not _usable(client, method):
            if challenge is None:
                raise InvalidClient(FAILED)
            raise InvalidClient(FAILED, status=401, headers=challenge)
        return client

    def _public(self, client_id: str | None) -> Client:
        if not client_id:
            raise InvalidClient("client authentication required")
        client = self._registry.get(client_id)
        if client is None or not _usable(client, "none"):
            raise InvalidClient(FAILED)
        return client

    async def _assertion(self, form: Mapping[str, str]) -> Client:
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
            raise InvalidRequest(f"client_assertion_type must be {JWT_BEARER_ASSERTION}")
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise InvalidRequest("client_assertion is missing")
        header, claims = _peek(assertion)
        if header.get("alg") not in ASSERTION_ALGORITHMS:
            raise InvalidClient("client assertion: algorithm not accepted")
        if "crit" in header or "b64" in header:
            raise InvalidClient("client assertion: header extensions are not accepted")
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or claims.get("iss") != client_id:
            raise InvalidClient("client assertion: iss and sub must both be the client_id")
        if form.get("client_id", client_id) != client_id:
            raise InvalidClient("client assertion: sub does not match client_id")
        client = self._registry.get(client_id)
        if client is None or not _usable(client, "private_key_jwt"):
            raise InvalidClient(FAILED)
        kid = header.get("kid")
        try:
            keys = await self._key_source(client).key_set(kid if isinstance(kid, str) else None)
        except JWKSError as exc:
            log.warning("client %s: key set not available: %s", client_id, exc)
            raise InvalidClient(FAILED) from None
        if not _signed_by(assertion, keys, kid):
            raise InvalidClient(FAILED)
        await self._check_claims(client_id, claims)
        return client

    async def _check_claims(self, client_id: str, claims: dict[str, Any]) -> None:
        now, leeway = self._clock(), self._leeway
        exp = claims.get("exp")
        if not _number(exp):
            raise InvalidClient("client assertion: exp is required")
        if exp + leeway <= now:
            raise InvalidClient("client assertion: expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _number(value) or value - leeway > now):
                raise InvalidClient(f"client assertion: {name} is in the future")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self._audiences for a in audiences):
            raise InvalidClient("client assertion: aud must name this authorization server")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidClient("client assertion: jti is required")
        # Remembered as long as the assertion would pass the exp check, leeway included.
        if not await self._replay.use_once(f"client_assertion:{client_id}", jti, exp + leeway):
            raise InvalidClient("client assertion: jti was already used")

    def _key_source(self, client: Client) -> JWKSource:
        """One cached key set per client, replaced when its registration changes."""
        identity = client.jwks_uri or json.dumps(client.jwks, sort_keys=True)
        held = self._sources.get(client.client_id)
        if held is not None and held[0] == identity:
            return held[1]
        if client.jwks_uri:
            source = JWKSource(uri=client.jwks_uri, http=self._http)
        else:
            source = JWKSource(jwks=dict(client.jwks or {}))
        self._sources[client.client_id] = (identity, source)
        return source


def _signed_by(assertion: str, keys: KeySet, kid: object) -> bool:
    """True when a key of `keys` (the one named by `kid`, else any) signed `assertion`."""
    for key in keys.keys:
        if kid is not None and key.kid != kid:
            continue
        try:
            jws.deserialize_compact(assertion, key, registry=_REGISTRY)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        return True
    return False


def _usable(client: Client, method: str) -> bool:
    return client.enabled and client.auth_method == method


def _number(value: object) -> TypeGuard[float]:
    """A JSON number usable as a NumericDate: finite, and not a bool (an int in Python)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _basic_header(headers: Mapping[str, str]) -> str | None:
    """The credentials of an `Authorization: Basic` header; None for no or another scheme."""
    value = headers.get("authorization")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "basic" else None


def _challenge(realm: str) -> dict[str, str]:
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return {"WWW-Authenticate": f'Basic realm="{quoted}"'}


def _peek(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, before the signature is checked: they say whose keys to use."""
    try:
        parsed = parse_compact(assertion, max_length=MAX_ASSERTION_LENGTH)
    except MalformedJWS as exc:
        raise InvalidClient(f"client assertion: not a signed JWT ({exc})") from None
    return parsed.header, parsed.payload


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
