"""The client registry: who may ask the bridge for tokens, how each client proves who it is,
and what it may ask for.

The registry is a TOML file of `[clients.<client_id>]` tables (docs/clients.md). It is
re-read when the file changes, so `bridge clients add` takes effect on a running server; a
file that no longer parses is reported and the last good registry stays in force, because
refusing every client over one typo would be an outage.

Secrets are stored only as salted SHA-256 hashes. A slow password hash (scrypt, argon2)
protects guessable passwords but would cost tens of milliseconds on every token request;
client secrets are not passwords: `bridge clients add` generates 256 random bits, which no
dictionary or brute force reaches, so one fast salted hash is enough.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..grammar import is_uri
from ..problems import Problem
from ..settings import ConfigError, ConfigProblem

log = logging.getLogger("bridge.oauth.clients")

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
GRANT_AUTHORIZATION_CODE = "authorization_code"
# OpenID CIBA Core 1.0 §10.1: the client polls for the token of a backchannel request.
GRANT_CIBA = "urn:openid:params:grant-type:ciba"
# The grants of the front channel: a person signs in and consents, and the code is bound to
# the PKCE verifier the client holds. A public client limited to these needs no DPoP: nothing
# it presents is a bearer credential someone else could have obtained (no subject tokens).
FRONT_CHANNEL_GRANTS = frozenset({GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_DEFERRED})

GrantType = Literal[
    "authorization_code",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:deferred",
    "urn:openid:params:grant-type:ciba",
]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
# JWK members that only a private (or symmetric) key has: a registry holds public keys only.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_HASH_PATTERN = re.compile(r"^sha256\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{43}$")


def hash_secret(secret: str) -> str:
    """`sha256$<salt>$<digest>` (unpadded base64url) of a client secret, for the registry."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode("utf-8")).digest()
    return f"sha256${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, hashed: str) -> bool:
    """True when `secret` hashes to `hashed`; the digests are compared in constant time."""
    parts = _hash_parts(hashed)
    if parts is None:
        return False
    scheme, salt, expected = parts
    given = hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given, expected) and scheme == "sha256"


@functools.lru_cache(maxsize=4096)
def _hash_parts(hashed: str) -> tuple[str, bytes, bytes] | None:
    """Scheme, salt and digest of a registry hash; decoded once per hash, not per request."""
    scheme, _, rest = hashed.partition("$")
    salt_b64, _, digest_b64 = rest.partition("$")
    try:
        return scheme, _unb64(salt_b64), _unb64(digest_b64)
    except ValueError:
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _default_grants() -> list[GrantType]:
    return ["client_credentials"]


class ClientSettings(BaseModel):
    """One `[clients.<client_id>]` table of the registry file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Printable ASCII without spaces (RFC 6749 VSCHAR): URLs and colons are fine, since
    # HTTP Basic carries the id form-urlencoded.
    client_id: str = Field(
        pattern=r"^[\x21-\x7e]{1,255}$", description="The `client_id` (the table's name)."
    )
    auth_method: AuthMethod = Field(
        description="How the client authenticates at the token endpoint (RFC 7591 names)."
    )
    secret_hash: str | None = Field(
        None,
        repr=False,
        description="`hash_secret()` of the secret, for the two client_secret methods.",
    )
    jwks: dict[str, Any] | None = Field(
        None, description="The client's public JWKS, inline, for `private_key_jwt`."
    )
    jwks_uri: str | None = Field(
        None, description="Where to fetch the client's JWKS (https), for `private_key_jwt`."
    )
    grant_types: list[GrantType] = Field(
        default_factory=_default_grants,
        description="Grant types the client may use at the token endpoint.",
    )
    authorization_details_types: list[str] = Field(
        default_factory=list,
        description="RAR `type`s the client may request; empty: none.",
    )
    scopes: list[str] = Field(default_factory=list, description="Scopes the client may request.")
    token_lifetime_seconds: int | None = Field(
        None, ge=10, description="Access token lifetime; unset: the global default."
    )
    require_dpop: bool = Field(
        False, description="Refuse token requests without a DPoP proof (always for `none`)."
    )
    refresh_tokens: bool = Field(False, description="Issue refresh tokens to this client.")
    notification_endpoint: str | None = Field(
        None,
        description=(
            "https URL for deferred-token ping notifications (loopback http for local testing)."
        ),
    )
    backchannel_token_delivery_mode: Literal["poll", "ping"] | None = Field(
        None,
        description=(
            "CIBA: `poll` (the default) or `ping` (told at "
            "`backchannel_client_notification_endpoint` when the request is decided); `push` "
            "is not offered."
        ),
    )
    backchannel_client_notification_endpoint: str | None = Field(
        None,
        description=(
            'CIBA `ping` mode: https URL the bridge POSTs `{"auth_req_id": ...}` to '
            "(loopback http for local testing)."
        ),
    )
    redirect_uris: list[str] = Field(
        default_factory=list,
        description=(
            "Where `/authorize` may send the user back, matched exactly (https, or loopback "
            "http for native and local clients); needed for `authorization_code`."
        ),
    )
    require_pushed_authorization_requests: bool = Field(
        False, description="Refuse `/authorize` without a `request_uri` from `/par` (RFC 9126)."
    )
    enabled: bool = Field(True, description="A disabled client fails authentication.")
    description: str = Field("", description="Free text for operators.")

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", scope):
                raise ValueError(f"{scope!r} is not a scope token (RFC 6749 §3.3)")
        return scopes

    @field_validator("redirect_uris")
    @classmethod
    def _redirect_uris(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            # RFC 6749 §3.1.2: absolute, no fragment; RFC 9700 §2.1: compared exactly, so
            # no pattern or wildcard is registrable; §4.1.1 wants https or loopback.
            if not is_uri(uri) or "#" in uri or "*" in uri:
                raise ValueError(f"{uri!r} is not an absolute URI without a fragment")
            if not re.match(
                r"^(https://[^/?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)([/?]|$)", uri
            ):
                raise ValueError(f"{uri!r} must be https (or loopback http)")
        return uris

    @field_validator("jwks_uri")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is not None and not (is_uri(url) and re.match(r"^https://[^/?#]+", url)):
            raise ValueError("must be an https URL")
        return url

    @field_validator("notification_endpoint", "backchannel_client_notification_endpoint")
    @classmethod
    def _https_or_loopback(cls, url: str | None) -> str | None:
        # Loopback http is registrable for local testing; pings go there only when
        # `access_requests.allow_private_callbacks` is on.
        if url is not None and not (
            is_uri(url)
            and re.match(
                r"^(https://[^/?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?[/?]?)", url
            )
        ):
            raise ValueError("must be an https URL (or loopback http, for local testing)")
        return url

    @field_validator("jwks")
    @classmethod
    def _public_jwks(cls, jwks: dict[str, Any] | None) -> dict[str, Any] | None:
        if jwks is None:
            return None
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise ValueError("must be a JWKS: {keys = [...]}")
        if any(PRIVATE_JWK_MEMBERS & k.keys() for k in keys):
            raise ValueError("must hold public keys only")
        try:
            KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"is not a usable JWKS: {exc}") from None
        return jwks

    @model_validator(mode="after")
    def _credentials_fit_method(self) -> ClientSettings:
        method = self.auth_method
        if method in SECRET_METHODS:
            if not self.secret_hash:
                raise ValueError(f"auth_method {method!r} needs secret_hash")
            if not _HASH_PATTERN.match(self.secret_hash):
                raise ValueError("secret_hash must be a hash from `bridge clients add`")
        elif self.secret_hash is not None:
            raise ValueError(f"auth_method {method!r} takes no secret_hash")
        if method == "private_key_jwt":
            if (self.jwks is None) == (self.jwks_uri is None):
                raise ValueError("private_key_jwt needs exactly one of jwks and jwks_uri")
        elif self.jwks is not None or self.jwks_uri is not None:
            raise ValueError(f"auth_method {method!r} takes no jwks or jwks_uri")
        if method == "none":
            if not self.require_dpop and not set(self.grant_types) <= FRONT_CHANNEL_GRANTS:
                raise ValueError(
                    "a public client (auth_method 'none') needs require_dpop = true, unless "
                    "it uses only authorization_code, refresh_token and the deferred grant"
                )
            # RFC 6749 §4.4: client_credentials is for confidential clients only.
            if GRANT_CLIENT_CREDENTIALS in self.grant_types:
                raise ValueError("a public client cannot use client_credentials")
        if GRANT_AUTHORIZATION_CODE in self.grant_types and not self.redirect_uris:
            raise ValueError("grant type authorization_code needs redirect_uris")
        if self.refresh_tokens and GRANT_REFRESH_TOKEN not in self.grant_types:
            raise ValueError("refresh_tokens = true needs 'refresh_token' in grant_types")
        self._ciba_registration()
        return self

    def _ciba_registration(self) -> None:
        ciba = GRANT_CIBA in self.grant_types
        if ciba and self.auth_method == "none":
            # CIBA Core §7.1: the client authenticates at the backchannel endpoint.
            raise ValueError("a public client cannot use the CIBA grant (it must authenticate)")
        if not ciba and (
            self.backchannel_token_delivery_mode is not None
            or self.backchannel_client_notification_endpoint is not None
        ):
            raise ValueError(f"backchannel_* options need {GRANT_CIBA!r} in grant_types")
        ping = self.backchannel_token_delivery_mode == "ping"
        if ping != (self.backchannel_client_notification_endpoint is not None):
            raise ValueError(
                "backchannel_token_delivery_mode 'ping' and "
                "backchannel_client_notification_endpoint go together"
            )

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def allows_type(self, rar_type: str) -> bool:
        return rar_type in self.authorization_details_types

    def allows_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def token_lifetime(self, default: int) -> int:
        """Access token lifetime for this client: its own, else the global `default`."""
        return self.token_lifetime_seconds or default


# The endpoints use the validated, frozen model itself: one shape from file to token.
Client = ClientSettings


class ClientsFileError(ConfigError):
    """The registry file cannot be read or is invalid; `problems` say `file:line: what`."""


_Stamp = tuple[int, int, int]


class ClientRegistry:
    """Clients by `client_id`, following their file (checked at most every `check_interval`)."""

    def __init__(
        self,
        clients: Mapping[str, Client],
        *,
        path: Path | None = None,
        check_interval: float = 1.0,
    ) -> None:
        self._clients = dict(clients)
        self.path = path
        self._interval = check_interval
        self._next_check = time.monotonic() + check_interval
        self._stamp: _Stamp | None = _stamp(path) if path else None
        self._bad_stamp: _Stamp | None = None
        # What a fresh start would also refuse in a new version of the file (e.g. a type no
        # profile defines): such a version is not taken, and `reload_error` says why.
        self.check: Callable[[list[Client]], list[Problem]] | None = None
        self.reload_error: str | None = None

    @classmethod
    def load(
        cls, path: Path, *, check_interval: float = 1.0, missing_ok: bool = False
    ) -> ClientRegistry:
        """Read the registry at `path`. Raises `ClientsFileError`. With `missing_ok`, a
        missing file is an empty registry that picks the file up once it is created."""
        stamp = _stamp(path)
        if missing_ok and not path.exists():
            return cls({}, path=path, check_interval=check_interval)
        registry = cls(parse_clients_file(path), path=path, check_interval=check_interval)
        registry._stamp = stamp  # the version parsed, even if the file changed meanwhile
        return registry

    def get(self, client_id: str) -> Client | None:
        self._follow_file()
        return self._clients.get(client_id)

    def clients(self) -> list[Client]:
        self._follow_file()
        return sorted(self._clients.values(), key=lambda c: c.client_id)

    def longest_token_lifetime(self, default: int) -> int:
        """The longest an access token of a registered client lives (`default` or more)."""
        return max([default, *(c.token_lifetime(default) for c in self.clients())])

    def _follow_file(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval
        stamp = _stamp(self.path)
        if stamp in (self._stamp, self._bad_stamp):
            return
        try:
            clients = parse_clients_file(self.path)
            problems = self.check(list(clients.values())) if self.check else []
            if problems:
                raise ClientsFileError(problems)
        except ClientsFileError as exc:
            self._bad_stamp = stamp  # report a broken version once, not every second
            self.reload_error = "; ".join(str(p) for p in exc.problems)
            log.error("client registry not reloaded, the last good one stays: %s", exc)
            return
        self._clients, self._stamp, self._bad_stamp = clients, stamp, None
        self.reload_error = None
        log.info("client registry reloaded from %s: %d clients", self.path, len(clients))


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1, -1)
    # The inode changes on `os.replace`, which is how `bridge clients` writes.
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def parse_clients_file(path: Path) -> dict[str, Client]:
    """Read and validate a registry file. Raises `ClientsFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientsFileError(
            [ConfigProblem(str(path), None, f"cannot read: {exc.strerror}")]
        ) from exc
    return {s.client_id: s for s in parse_clients_text(text, str(path))}


def parse_clients_text(text: str, name: str) -> list[ClientSettings]:
    """Validate registry text; every problem found is reported, with its line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        raise ClientsFileError(
            [ConfigProblem(name, int(at.group(1)) if at else None, str(exc))]
        ) from exc
    lines = _LineIndex(text)
    problems: list[ConfigProblem] = []
    for key in raw:
        if key != "clients":
            problems.append(ConfigProblem(name, lines.find((), (key,)), f"{key}: unknown table"))
    tables = raw.get("clients", {})
    if not isinstance(tables, dict):
        problems.append(ConfigProblem(name, lines.find((), ("clients",)), "clients: not a table"))
        tables = {}
    found: list[ClientSettings] = []
    for client_id, table in tables.items():
        where = ("clients", client_id)
        if not isinstance(table, dict):
            problems.append(
                ConfigProblem(name, lines.find(where, ()), f"clients.{client_id}: not a table")
            )
            continue
        if table.get("client_id", client_id) != client_id:
            line = lines.find(where, ("client_id",))
            problems.append(ConfigProblem(name, line, "client_id must match the table name"))
            continue
        try:
            found.append(ClientSettings.model_validate({**table, "client_id": client_id}))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(str(p) for p in err["loc"])
                message = str(err["msg"]).removeprefix("Value error, ")
                dotted = ".".join(("clients", client_id, *loc))
                problems.append(ConfigProblem(name, lines.find(where, loc), f"{dotted}: {message}"))
    if problems:
        raise ClientsFileError(problems)
    return found


class _LineIndex:
    """Lines of table headers and keys, with keys parsed by TOML itself (quoted keys work)."""

    def __init__(self, text: str) -> None:
        self.headers: dict[tuple[str, ...], int] = {}
        self.keys: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith("[") and not stripped.startswith("[["):
                table = header_path(stripped) or table
                self.headers.setdefault(table, number)
            elif "=" in stripped and not stripped.startswith("#"):
                path = _key_path(stripped.split("=", 1)[0])
                if path:
                    self.keys.setdefault(table + path, number)

    def find(self, table: tuple[str, ...], loc: tuple[str, ...]) -> int | None:
        """The line of `loc` inside `table`, else of the closest enclosing table or key."""
        for cut in range(len(loc), -1, -1):
            path = table + loc[:cut]
            if path in self.keys:
                return self.keys[path]
            if path in self.headers:
                return self.headers[path]
        return None


def header_path(line: str) -> tuple[str, ...] | None:
    """The key path of a `[a."b".c]  # ...` header line, or None when it is not one."""
    return _walk(line)


def _key_path(keys: str) -> tuple[str, ...] | None:
    return _walk(f"{keys} = 0")


def _walk(toml_line: str) -> tuple[str, ...] | None:
    try:
        value: Any = tomllib.loads(toml_line)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        path.append(key)
        value = value[key]
    return tuple(path) or None
