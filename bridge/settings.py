"""Typed configuration, read from one TOML file.

Every option is documented here where it is defined and in docs/configuration.md; a test
checks that the two agree.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

from .problems import Problem, ProblemsError

DEFAULT_CONFIG = Path("bridge.toml")
# The local demo's approver issuer (see `access_requests.demo_approver_key_file`).
DEMO_APPROVER_ISSUER = "urn:authzen-bridge:demo-approvers"


class _Section(BaseModel):
    # A misspelt option is a mistake worth reporting, not something to ignore silently. A
    # validation error never echoes the input: it may hold a secret (`storage.url`'s
    # password, API keys, tokens).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address `bridge serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port `bridge serve` listens on.")
    public_url: str = Field(
        "http://127.0.0.1:8080",
        description=(
            "The bridge's external base URL (scheme, host, optional path, no trailing slash). "
            "Metadata documents are built from it, never from request headers."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log level written."
    )
    access_log: bool = Field(True, description="Write one log line per HTTP request.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Worker processes `bridge serve` runs on one listening socket (`--workers`). "
            "They share the storage; housekeeping is done by one of them at a time."
        ),
    )


class MetricsSettings(_Section):
    enabled: bool = Field(
        False, description="Serve operators' metrics at `/metrics` (Prometheus text format)."
    )
    token_file: Path | None = Field(
        None,
        description=(
            "File holding the bearer token a scraper must send "
            "(`Authorization: Bearer <token>`). Unset: `/metrics` answers whoever reaches it, "
            "so keep it on a network only the scrapers reach."
        ),
    )


class LimitsSettings(_Section):
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_batch_items: int = Field(
        100, ge=1, description="Most items in one Access Evaluations request (400 above)."
    )
    max_page_size: int = Field(
        1000, ge=1, description="Most results in one search response; larger sets are paged."
    )


class SearchSettings(_Section):
    page_token_secret: SecretStr | None = Field(
        None,
        description=(
            "Key that signs search `next_token`s. When unset, one derived from the "
            "key-encryption key, so every worker and replica sharing it accepts the others'."
        ),
    )


class PEPAuthSettings(_Section):
    """How PEPs authenticate to one store's AuthZEN API. No option set: no authentication."""

    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted API keys, sent raw or as `Bearer <key>` in `api_key_header`.",
    )
    api_key_header: str = Field(
        "authorization", description="Header that carries the API key (case-insensitive)."
    )
    jwt_issuer: str | None = Field(None, description="Issuer (`iss`) of accepted bearer JWTs.")
    jwt_audience: str | None = Field(
        None, description="Audience (`aud`) a bearer JWT must carry; defaults to the PDP URL."
    )
    jwks: dict[str, Any] | None = Field(None, description="The issuer's JWKS, inline.")
    jwks_uri: HttpUrl | None = Field(None, description="Where to fetch the issuer's JWKS.")
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["ES256", "RS256", "EdDSA", "PS256"],
        description="Signature algorithms accepted on bearer JWTs.",
    )

    @model_validator(mode="after")
    def _jwt_needs_keys(self) -> PEPAuthSettings:
        if self.jwt_issuer and not (self.jwks or self.jwks_uri):
            raise ValueError("jwt_issuer needs `jwks` or `jwks_uri`")
        if self.jwks and self.jwks_uri:
            raise ValueError("give `jwks` or `jwks_uri`, not both")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys or self.jwt_issuer)


class StoreSettings(_Section):
    path: Path = Field(description="Folder holding `*.cedar`, the schema and `entities.json`.")
    explanations: bool = Field(
        False,
        description=(
            "Add the determining policies' `@id`s and evaluation errors to each decision's "
            "`context`. Off by default: interop clients compare batch items exactly."
        ),
    )
    auth: PEPAuthSettings = Field(default_factory=PEPAuthSettings)
    token_issuance: bool = Field(
        False,
        description=(
            "Advertise `urn:openid:authzen:capability:token-issuance` in the store's metadata, "
            "for authorization servers that ask it with the token issuance profile. The "
            "engine decides any gate action (one no policy permits is denied), as the "
            "capability promises; say it of a store whose policies are written for it."
        ),
    )


class ReloadSettings(_Section):
    enabled: bool = Field(True, description="Watch store folders and reload them on change.")
    interval_seconds: float = Field(
        1.0, gt=0, description="How often store folders are checked for changes."
    )


class RemotePDPSettings(_Section):
    url: HttpUrl = Field(description="The remote PDP's identifier (`policy_decision_point`).")
    api_key: SecretStr | None = Field(None, description="Sent as `Authorization: <key>`.")
    bearer_token: SecretStr | None = Field(
        None, description="Sent as `Authorization: Bearer <token>`."
    )
    timeout_seconds: float = Field(5.0, gt=0, description="Per-request timeout.")
    retries: int = Field(
        2, ge=0, le=10, description="Retries after a transport failure or a 5xx answer."
    )
    backoff_seconds: float = Field(
        0.1, ge=0, description="First retry delay; doubles with each further retry."
    )
    max_connections: int = Field(50, ge=1, description="Connection pool size.")
    discovery: bool = Field(
        True,
        description=(
            "Read `/.well-known/authzen-configuration` for endpoint URLs; when off, the "
            "default paths under `url` are used."
        ),
    )


# Claims the bridge alone sets in a token (RFC 9068 §2.2, RFC 8693, RFC 9396, RFC 9470 §6.1):
# neither a PDP's `claims` nor a search may supply them.
RESERVED_TOKEN_CLAIMS = frozenset(
    {
        "iss", "iat", "jti", "sub", "aud", "exp", "nbf", "scope", "client_id", "cnf", "act",
        "may_act", "authorization_details", "acr", "amr", "auth_time",
    }
)  # fmt: skip
_CLAIM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
# The three claims the authorization claims profile binds (§5.2): resource type, action.
_REGISTERED_CLAIM_BINDINGS = {"groups", "roles", "entitlements"}


class AuthorizationClaimSettings(_Section):
    """One claim an access token carries from an AuthZEN resource search (the authorization
    claims profile): which search enumerates it, and what a failed search means."""

    resource_type: str | None = Field(
        None,
        min_length=1,
        description=(
            "The searched `resource.type`; defaults to the registered binding's (`groups`: "
            "`group`, `roles`: `role`, `entitlements`: `entitlement`)."
        ),
    )
    action: str | None = Field(
        None,
        min_length=1,
        description=(
            "The search's `action.name`; defaults to the registered binding's (`member`, "
            "`assignee`, `holder`)."
        ),
    )
    on_failure: Literal["omit", "refuse"] = Field(
        description=(
            "When the search fails (no answer, an error, a result of another type): `omit` "
            "issues the token without the claim, `refuse` issues none (`server_error`). No "
            "default: the profile leaves the choice to the deployment."
        )
    )


class PDPSettings(_Section):
    """Which decision point decides token requests."""

    kind: Literal["embedded", "remote"] = Field(
        "embedded", description="`embedded` (a Cedar store of this bridge) or `remote`."
    )
    store: str = Field("default", description="The embedded store that decides.")
    remote: RemotePDPSettings | None = Field(None, description="Settings of a remote PDP.")
    mapping: Literal["arop", "token_issuance"] = Field(
        "arop",
        description=(
            "How a token request becomes AuthZEN evaluations (docs/pdp-mappings.md): `arop`, "
            "the Access Request OAuth Profile's mapping through the RAR type profiles, all or "
            "nothing; or `token_issuance`, the OpenID AuthZEN token issuance profile's (gate "
            "tuples on `audience` resources, verbatim scopes and locations, narrowing, the "
            "PDP's `context.issuance`). A remote PDP must then advertise "
            "`urn:openid:authzen:capability:token-issuance`."
        ),
    )
    token_claims: list[str] = Field(
        default_factory=list,
        description=(
            "Under `token_issuance`: the claims a PDP may add to tokens with "
            "`context.issuance.claims`. Others are dropped; a `crit` naming one refuses the "
            "token. Reserved claims (`sub`, `aud`, `scope`, ...) are refused whatever this says."
        ),
    )
    authorization_claims: dict[str, AuthorizationClaimSettings] = Field(
        default_factory=dict,
        description=(
            "Claims of access tokens taken from resource searches of this PDP, by claim name "
            "(e.g. `groups`): the ids of the resources the token's subject is related to. "
            "They never change what is issued (docs/authorization-claims.md)."
        ),
    )

    @model_validator(mode="after")
    def _remote_needs_settings(self) -> PDPSettings:
        if self.kind == "remote" and self.remote is None:
            raise ValueError("kind = 'remote' needs a [pdp.remote] table")
        if (
            self.mapping == "token_issuance"
            and self.kind == "remote"
            and self.remote is not None
            and not self.remote.discovery
        ):
            # The capability the profile requires is read from the PDP's metadata.
            raise ValueError("mapping = 'token_issuance' with a remote PDP needs discovery")
        return self

    @model_validator(mode="after")
    def _claims_are_bound(self) -> PDPSettings:
        problems = []
        for claim, binding in self.authorization_claims.items():
            where = f"authorization_claims.{claim[:64]}"
            if not _CLAIM_NAME.fullmatch(claim) or claim in RESERVED_TOKEN_CLAIMS:
                problems.append(f"{where}: not a claim name a search may supply")
            elif claim in self.token_claims:
                # One claim, one source: a PDP's `claims` and a search would disagree.
                problems.append(f"{where}: also in token_claims; give it one source")
            if claim not in _REGISTERED_CLAIM_BINDINGS and (
                binding.resource_type is None or binding.action is None
            ):
                problems.append(f"{where}: not a registered claim, give resource_type and action")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class StorageSettings(_Section):
    """Where the bridge keeps its state: one SQLite file (`path`, the default: one process),
    or one PostgreSQL database shared by every replica (`url`)."""

    path: Path = Field(
        Path("var/bridge.sqlite3"),
        description=(
            "The SQLite database file (created mode 0600, with its folder, on first start). "
            "Not together with `url`."
        ),
    )
    url: SecretStr | None = Field(
        None,
        description=(
            "PostgreSQL instead of SQLite: `postgresql://USER@HOST:PORT/DB` (a libpq URL; "
            "query parameters such as `sslmode` allowed). Every replica names the same "
            "database. Never logged."
        ),
    )
    password_file: Path | None = Field(
        None,
        description=(
            "File whose first line is the PostgreSQL password, when the URL has none; "
            "else `BRIDGE_DATABASE_PASSWORD` from the environment."
        ),
    )
    pool_min_size: int = Field(
        1, ge=0, description="PostgreSQL connections each process keeps open."
    )
    pool_max_size: int = Field(
        10, ge=1, description="Most PostgreSQL connections each process opens."
    )
    pool_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "How long a request waits for a free PostgreSQL connection (and a connection "
            "attempt for the server) before it fails."
        ),
    )
    outbox_lease_seconds: float = Field(
        60.0,
        ge=1,
        description=(
            "How long a claimed outbox row (ping, callback) is held by the process delivering "
            "it; a process killed meanwhile leaves it due again after this long."
        ),
    )
    migrate_on_start: bool = Field(
        True,
        description=(
            "Bring the database schema up to date when the bridge starts; when off, a "
            "database that needs migrating is refused (run `bridge db migrate`)."
        ),
    )

    @model_validator(mode="after")
    def _one_database(self) -> StorageSettings:
        postgres_only = {"password_file", "pool_min_size", "pool_max_size", "pool_timeout_seconds"}
        if self.url is None:
            given = sorted(postgres_only & self.model_fields_set)
            if given:
                raise ValueError(f"{', '.join(given)}: only with `url` (PostgreSQL)")
            return self
        if "path" in self.model_fields_set:
            # Which of the two holds the state would otherwise be a guess.
            raise ValueError("give `url` (PostgreSQL) or `path` (SQLite), not both")
        scheme, sep, rest = self.url.get_secret_value().partition("://")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ValueError("url must be a postgresql:// URL")  # the value is never quoted
        userinfo = rest.split("/", 1)[0].rpartition("@")[0]
        if ":" in userinfo and self.password_file is not None:
            raise ValueError("the url carries a password: give it there or in password_file")
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size is larger than pool_max_size")
        return self


class DPoPSettings(_Section):
    algorithms: list[str] = Field(
        default_factory=lambda: [
            "ES256",
            "ES384",
            "ES512",
            "RS256",
            "RS384",
            "RS512",
            "PS256",
            "PS384",
            "PS512",
            "EdDSA",
        ],
        description="Signature algorithms accepted on DPoP proofs.",
    )
    iat_leeway_seconds: int = Field(
        60, ge=1, le=600, description="How far a proof's `iat` may lie from the server clock."
    )
    require_nonce: bool = Field(
        False, description="Demand a server-issued `nonce` in every proof (RFC 9449 §8)."
    )
    nonce_lifetime_seconds: int = Field(
        300, ge=10, description="How long a server-issued DPoP nonce is accepted."
    )


class TrustedIssuerSettings(_Section):
    """An issuer whose JWTs the bridge accepts as subject tokens, actor tokens and assertions."""

    issuer: str = Field(description="The `iss` of its tokens.")
    audience: str | None = Field(
        None, description="The `aud` its tokens must carry; defaults to the bridge's issuer."
    )
    jwks: dict[str, Any] | None = Field(None, description="Its JWKS, inline.")
    jwks_uri: HttpUrl | None = Field(None, description="Where to fetch its JWKS.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["ES256", "RS256", "PS256", "EdDSA"],
        description="Signature algorithms accepted on its tokens.",
    )
    subject_type: str = Field(
        "user", description="AuthZEN `subject.type` of the principals its tokens name."
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedIssuerSettings:
        if bool(self.jwks) == bool(self.jwks_uri):
            raise ValueError("give exactly one of `jwks` and `jwks_uri`")
        return self


# A Python import path `package.module:attribute`.
_IMPORT_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class OAuthSettings(_Section):
    issuer: str | None = Field(
        None, description="The authorization server's issuer; defaults to `server.public_url`."
    )
    clients_file: Path = Field(
        Path("clients.toml"), description="The client registry, managed by `bridge clients`."
    )
    profiles_dir: Path = Field(
        Path("profiles"), description="Folder of RAR type profiles (`*.json`)."
    )
    key_encryption_key_file: Path = Field(
        Path("var/signing-keys.kek"),
        description=(
            "File holding the key that encrypts signing keys at rest; created (mode 0600) on "
            "first start. Give every replica the same file."
        ),
    )
    signing_alg: Literal["ES256", "ES384", "RS256", "PS256", "EdDSA"] = Field(
        "ES256", description="Algorithm of newly generated access token signing keys."
    )
    access_token_lifetime_seconds: int = Field(
        600, ge=10, description="Access token lifetime, unless a client sets its own."
    )
    refresh_token_lifetime_seconds: int = Field(
        86_400, ge=60, description="Refresh token lifetime (rotation keeps the original end)."
    )
    client_subject_type: str = Field(
        "client", description="AuthZEN `subject.type` of a client acting for itself."
    )
    max_authorization_details: int = Field(
        20, ge=1, description="Most `authorization_details` entries in one token request."
    )
    introspection_reevaluates: bool = Field(
        False,
        description=(
            "Introspection asks the PDP again whether an access token's access is still "
            "permitted; a token whose permit is gone is inactive from then on (docs/events.md)."
        ),
    )
    introspection_cache_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description=(
            "How long an answer of that re-evaluation is reused for a token, while the policy "
            "store's version stays the same; 0: asked at every introspection."
        ),
    )
    introspection_subject_type: str = Field(
        "user",
        min_length=1,
        description=(
            "AuthZEN `subject.type` of a token's `sub` when introspection asks again (a token "
            "whose `sub` is its `client_id`, with no `act`: `client_subject_type`)."
        ),
    )
    dpop: DPoPSettings = Field(default_factory=DPoPSettings)
    trusted_issuers: list[TrustedIssuerSettings] = Field(
        default_factory=list, description="Issuers of subject tokens, actor tokens, assertions."
    )
    obligation_handlers: list[Annotated[str, Field(pattern=_IMPORT_PATH)]] = Field(
        default_factory=list,
        description=(
            "The deployment's handlers of AuthZEN obligations (docs/obligations.md), as "
            "Python import paths `module:attribute`: a handler, or what makes one when called "
            "with no arguments. A permit with an obligation no handler carries out is a denial."
        ),
    )


# Signature algorithms an ID token may carry. `none` and the HMAC family are never among them:
# an HMAC ID token is keyed with the client secret, which proves nothing about the provider.
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
)
# RFC 6749 §3.3 scope-token characters (bridge.grammar sits beside this module, not below).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# An AuthZEN subject property name as it appears in policies.
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,99}")

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


class UpstreamSignInSettings(_Section):
    """Sign-in as a relying party of the organisation's OpenID Provider (OpenID Connect Core
    1.0): the bridge sends people there and takes the ID token's subject as theirs."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    issuer: str = Field(
        description=(
            "The provider's issuer identifier, exactly as its ID tokens name it (`iss`); its "
            "metadata is read from `<issuer>/.well-known/openid-configuration`."
        )
    )
    client_id: str = Field(
        min_length=1, description="The client identifier the provider registered for the bridge."
    )
    client_secret: SecretStr | None = Field(
        None,
        description=(
            "The client secret, for `client_secret_basic` and `client_secret_post`. Not "
            "together with `client_secret_file`. Never logged."
        ),
    )
    client_secret_file: Path | None = Field(
        None,
        description="File whose first line is the client secret, instead of `client_secret`.",
    )
    token_endpoint_auth_method: TokenEndpointAuthMethod = Field(
        "client_secret_basic",
        description=(
            "How the bridge authenticates at the provider's token endpoint: "
            "`client_secret_basic`, `client_secret_post`, or `none` (a public client, "
            "protected by PKCE alone)."
        ),
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid"],
        description="Scopes asked for; `openid` is always sent, add e.g. `email` or `groups`.",
    )
    display_name: str = Field(
        "the organisation's sign-in",
        min_length=1,
        max_length=100,
        description='Shown on the sign-in page\'s button: "Sign in with <display_name>".',
    )
    name_claim: str = Field(
        "sub",
        min_length=1,
        description=(
            "The ID token claim whose value becomes the person's name (the AuthZEN "
            "`subject.id` and the access token's `sub`); it must be a non-empty string. "
            "Keep `sub` unless the provider documents another claim as stable and unique."
        ),
    )
    subject_type: str = Field(
        "user", min_length=1, description="The AuthZEN `subject.type` of people signed in."
    )
    claim_properties: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "AuthZEN subject property name -> ID token claim, e.g. "
            '`{ email = "email", groups = "groups" }`. A claim the token lacks is left out.'
        ),
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        min_length=1,
        description=(
            "Signature algorithms accepted on ID tokens (asymmetric ones only: `none` and "
            "HS256/384/512 are refused)."
        ),
    )
    leeway_seconds: int = Field(
        60, ge=0, le=300, description="Clock skew allowed on the ID token's `exp` and `iat`."
    )
    max_id_token_age_seconds: int = Field(
        600,
        ge=60,
        description="An ID token whose `iat` is older than this is refused, whatever its `exp`.",
    )
    pending_lifetime_seconds: int = Field(
        600,
        ge=60,
        le=3600,
        description="How long a person may take at the provider before the sign-in expires.",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description=(
            "Longest wait for each exchange with the provider (discovery, keys, code "
            "exchange), connecting included."
        ),
    )
    metadata_max_age_seconds: int = Field(
        3600, ge=0, description="How long the provider's metadata is kept before it is read again."
    )
    jwks_min_refresh_seconds: float = Field(
        10.0,
        ge=0,
        description=(
            "An ID token signed with a key the bridge does not know makes it read the "
            "provider's keys again (key rotation), at most this often."
        ),
    )
    allow_private_network: bool = Field(
        False,
        description=(
            "Allow the provider's endpoints at private, loopback or link-local addresses (a "
            "provider inside the organisation's network), and plain http to loopback (local "
            "testing). Off: https to public addresses only."
        ),
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, issuer: str) -> str:
        # OpenID Connect Discovery §2: https, a host, no query or fragment. Plain http is
        # checked against `allow_private_network` when the provider is called.
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must have no query, fragment or user info")
        return issuer

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not a scope token (RFC 6749 §3.3)")
        return scopes

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, algorithms: list[str]) -> list[str]:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: not accepted; choose from "
                + ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            )
        return algorithms

    @field_validator("claim_properties")
    @classmethod
    def _property_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name, claim in mapping.items():
            if not _PROPERTY_NAME.fullmatch(name):
                raise ValueError(f"{name[:100]!r} is not a usable property name")
            if not claim:
                raise ValueError(f"property {name!r} names no claim")
        return mapping

    @model_validator(mode="after")
    def _one_secret(self) -> UpstreamSignInSettings:
        given = (self.client_secret is not None) + (self.client_secret_file is not None)
        if self.token_endpoint_auth_method == "none":
            if given:
                raise ValueError("a public client (`none`) takes no client secret")
        elif given != 1:
            raise ValueError(
                f"{self.token_endpoint_auth_method} needs exactly one of `client_secret` "
                "and `client_secret_file`"
            )
        return self

    @property
    def requested_scope(self) -> str:
        """The `scope` parameter: `openid` first, each scope once."""
        scopes = ["openid", *(s for s in self.scopes if s != "openid")]
        return " ".join(dict.fromkeys(scopes))

    def read_client_secret(self) -> str | None:
        """The client secret (read from its file when configured so), None for a public
        client. Raises `OSError` or `ValueError` when the file cannot be used."""
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        if self.client_secret_file is None:
            return None
        lines = self.client_secret_file.read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"{self.client_secret_file.name}: no secret on the first line")
        return lines[0].strip()


class FrontDoorSettings(_Section):
    """`/authorize`, `/par`, sign-in and consent: where people meet the bridge."""

    enabled: bool = Field(
        True, description="Serve `/authorize`, `/par`, sign-in and consent (needs OAuth on)."
    )
    users_file: Path = Field(
        Path("users.toml"),
        description="Local accounts (argon2id hashes), managed with `bridge users`.",
    )
    require_pushed_authorization_requests: bool = Field(
        False,
        description="Refuse `/authorize` without a `request_uri` from `/par`, for every client.",
    )
    request_uri_lifetime_seconds: int = Field(
        60, ge=5, le=600, description="How long a pushed request's `request_uri` lives."
    )
    code_lifetime_seconds: int = Field(
        60, ge=5, le=60, description="Authorization code lifetime (RFC 9700: short; at most 60)."
    )
    interaction_lifetime_seconds: int = Field(
        600, ge=60, description="How long a person has to sign in and consent to one request."
    )
    session_lifetime_seconds: int = Field(
        3600, ge=60, le=86_400, description="A sign-in session's lifetime; not extended by use."
    )
    sign_in_window_seconds: int = Field(
        900, ge=10, description="Window in which failed sign-ins are counted."
    )
    max_failures_per_account: int = Field(
        5, ge=1, description="Failed sign-ins per account in a window before it is refused."
    )
    max_failures_per_address: int = Field(
        20, ge=1, description="Failed sign-ins per client address in a window before refusal."
    )
    direct_deferral: bool = Field(
        False,
        description=(
            "Answer an authorization request that opted in (`completion_mode=deferred`) and "
            "needs an approval with a `deferral_code` instead of a `code` (DTR PR #47); "
            "published as `deferred_authorization_endpoint_supported`."
        ),
    )
    local_accounts: bool = Field(
        True,
        description=(
            "Offer the user name and password form for the accounts in `users_file`. Turn it "
            "off when everyone signs in at the organisation's provider (`upstream_signin`)."
        ),
    )
    upstream_signin: UpstreamSignInSettings | None = Field(
        None,
        description=(
            "Sign people in at the organisation's OpenID Provider; the bridge's redirect URI "
            "to register there is `<public_url>/sign-in/callback`."
        ),
    )

    @model_validator(mode="after")
    def _someone_can_sign_in(self) -> FrontDoorSettings:
        if self.enabled and not self.local_accounts and self.upstream_signin is None:
            raise ValueError(
                "nobody could sign in: keep `local_accounts` on or configure `upstream_signin`"
            )
        return self


class AccessRequestSettings(_Section):
    """The embedded access request service (ARAP) and its approvers."""

    approver_issuer: str | None = Field(
        None,
        description=(
            "Issuer (one of `oauth.trusted_issuers`) whose bearer JWTs approvers present to "
            "the approver API; unset: no approver can act."
        ),
    )
    approver_audience: str | None = Field(
        None,
        description=(
            "The `aud` approver JWTs must carry; defaults to the approver API's URL "
            "(`<public_url>/access/v1/approvals`). It must differ from every audience the "
            "bridge accepts subject tokens and assertions with, so that no token serves both."
        ),
    )
    allow_anonymous_requesters: bool = Field(
        False,
        description=(
            "Let callers of `/access/v1/requests` file and read access requests without "
            "authenticating (all as one requester, `pep:anonymous`) when the default store "
            "asks PEPs for no credential. Local demos only: anyone could then read or cancel "
            "anyone's request. Off: such a store refuses requesters with 401."
        ),
    )
    denial_lifetime_seconds: int = Field(
        600, ge=10, description="How long a requestable denial may be submitted (`expires_at`)."
    )
    request_lifetime_seconds: int = Field(
        10_800, ge=60, description="How long an access request waits for approvers."
    )
    default_approval_seconds: int = Field(
        3_600, ge=60, description="`approved_until` when an approver does not set one."
    )
    max_approval_seconds: int = Field(
        86_400, ge=60, description="The latest `approved_until` an approver may set."
    )
    binding_context_members: list[str] = Field(
        default_factory=lambda: ["client_id", "dpop_jkt", "resource"],
        description="Authorization-relevant context members a denial is bound to.",
    )
    allow_private_callbacks: bool = Field(
        False,
        description=(
            "Accept callback and ping targets on loopback or private addresses (local "
            "testing only)."
        ),
    )
    demo_approver_key_file: Path | None = Field(
        None,
        description=(
            "Local demo only: a key file (created on first use) for an approver issuer the "
            "bridge trusts, whose tokens `bridge approvers token SUB` prints."
        ),
    )


class DeferralSettings(_Section):
    """Deferred Token Responses at the token endpoint."""

    code_lifetime_seconds: int = Field(
        10_800, ge=60, description="Longest life of a deferral code (also bounded by the request)."
    )
    interval_seconds: int = Field(5, ge=1, description="Minimum seconds between polls.")
    slow_down_seconds: int = Field(5, ge=5, description="Added to the interval by `slow_down`.")
    poll_tolerance_seconds: float = Field(
        1.0, ge=0, description="How much early a poll may come before it counts as too fast."
    )
    max_slow_downs: int = Field(
        10, ge=1, description="Consecutive `slow_down`s before the code is refused."
    )
    ping_delay_seconds: float = Field(
        0.5, ge=0, description="Wait before a ping, so the client has stored its code."
    )


class CibaSettings(_Section):
    """Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0) as AROP binds it: a
    client asks for a token that acts for a user, who approves on her own device."""

    enabled: bool = Field(
        True,
        description=(
            "Serve the backchannel authentication endpoint and the CIBA grant (needs the "
            "front door: the user approves on its pages after signing in)."
        ),
    )
    default_expiry_seconds: int = Field(
        600,
        ge=10,
        description="Life of an `auth_req_id` when the request names no `requested_expiry`.",
    )
    max_expiry_seconds: int = Field(
        10_800,
        ge=10,
        description=(
            "The longest `requested_expiry` granted; also bounded by "
            "`deferral.code_lifetime_seconds` and by the access request's end."
        ),
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> CibaSettings:
        if self.default_expiry_seconds > self.max_expiry_seconds:
            raise ValueError("default_expiry_seconds must not exceed max_expiry_seconds")
        return self


# -- [notifications] ----------------------------------------------------------------------

# A mailbox as the bridge writes it into `To` and `From`: one address, nothing that could end
# a header line or add a second recipient.
_MAILBOX = re.compile(
    r"[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
)
_FROM = re.compile(
    rf"(?P<name>[^<>\"\x00-\x1f\x7f]{{0,100}})<(?P<address>{_MAILBOX.pattern})>"
    rf"|(?P<bare>{_MAILBOX.pattern})"
)
# A person is named as policies name them (the approver's `sub`): printable, no spaces.
_PERSON_NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
_WEBHOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# An approval template's name (access_requests.templates), or `*` for every other template.
_TEMPLATE_NAME = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpSettings(_Section):
    """The mail server approver e-mail goes through (a submission server, RFC 6409)."""

    host: str = Field(min_length=1, description="The SMTP server's host name or address.")
    port: int = Field(
        587, ge=1, le=65535, description="Its port: 587 for `starttls`, 465 for `tls`."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description=(
            "`starttls`: plain connection upgraded with STARTTLS, which the server must offer; "
            "`tls`: TLS from the first byte; `none`: no TLS, only to a loopback host."
        ),
    )
    username: str | None = Field(
        None, min_length=1, description="Login for SMTP AUTH; with `password_file`."
    )
    password_file: Path | None = Field(
        None,
        description=(
            "File whose first line is the SMTP password, read for each connection. Never "
            "logged. There is no inline password option."
        ),
    )
    from_address: str = Field(
        description="The `From` of every message: `bridge@example.com` or `Name <addr>`."
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Longest wait for each exchange with the server."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        if any(c.isspace() for c in host) or "/" in host:
            raise ValueError("must be a host name or address")
        return host

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if not _FROM.fullmatch(value):
            raise ValueError("must be an e-mail address, optionally as `Name <address>`")
        return value

    @property
    def sender(self) -> tuple[str, str]:
        """`from_address` as (display name, address); the name may be ''."""
        found = _FROM.fullmatch(self.from_address)
        assert found is not None  # checked when read
        if found["bare"]:
            return "", found["bare"]
        return found["name"].strip(), found["address"]

    @model_validator(mode="after")
    def _safe(self) -> SmtpSettings:
        if self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                "security = 'none' only to a loopback host: mail and password would cross "
                "the network in clear"
            )
        if (self.username is None) != (self.password_file is None):
            raise ValueError("give `username` and `password_file` together, or neither")
        return self


class PersonSettings(_Section):
    """An approver the bridge may notify: who they are to policy, and how they are reached."""

    type: str = Field(
        "user",
        min_length=1,
        description="Their AuthZEN `subject.type`, as policies see approvers (Cedar principal).",
    )
    email: str | None = Field(
        None, description="Their e-mail address (needs `[notifications.smtp]`)."
    )
    webhook: str | None = Field(
        None, description="The name of a `[notifications.webhooks.<name>]` of theirs."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _MAILBOX.fullmatch(value):
            raise ValueError("must be one e-mail address, e.g. alice@example.com")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> PersonSettings:
        if self.email is None and self.webhook is None:
            raise ValueError("give `email`, `webhook` or both: how is this person reached?")
        return self


class WebhookSettings(_Section):
    """An HTTP endpoint notices are POSTed to."""

    url: str = Field(
        description=(
            "Where notices are POSTed: https (plain http to loopback only, with "
            "`allow_private_network`). Never logged: a Slack URL is a secret."
        )
    )
    format: Literal["jws", "slack"] = Field(
        "jws",
        description=(
            "`jws`: the notice as a compact JWS (`application/jose`); `slack`: Slack's "
            '`{"text": ...}`, with the JWS in the `Bridge-Signature` header.'
        ),
    )
    allow_private_network: bool = Field(
        False,
        description=(
            "Allow a private, loopback or link-local address, and plain http to loopback "
            "(local testing). Off: https to public addresses only."
        ),
    )

    @model_validator(mode="after")
    def _target(self) -> WebhookSettings:
        try:
            parts = urlsplit(self.url)
            _ = parts.port
        except ValueError:
            raise ValueError("url is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("url must be an https URL with a host")
        if parts.username or parts.password or parts.fragment:
            raise ValueError("url must have no user info or fragment")
        if parts.scheme == "http" and not self.allow_private_network:
            raise ValueError("plain http only with `allow_private_network = true` (local testing)")
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None  # a name: its addresses are checked before each delivery
        private = parts.hostname == "localhost" or (literal is not None and not literal.is_global)
        if private and not self.allow_private_network:
            raise ValueError("a private or loopback address needs `allow_private_network = true`")
        return self


class NotificationTemplateSettings(_Section):
    """Who is told about access requests of one approval template."""

    people: list[str] = Field(
        default_factory=list,
        description=(
            "People (names of `[notifications.people]`) told when a step waits for a "
            "decision or an emergency approval for a review: those policy lets act on it."
        ),
    )
    webhooks: list[str] = Field(
        default_factory=list,
        description="Group webhooks told of every such step, whoever may act on it.",
    )
    escalation_people: list[str] = Field(
        default_factory=list,
        description="People told when a step waits longer than its timeout (not asked of policy).",
    )
    escalation_webhooks: list[str] = Field(
        default_factory=list, description="Webhooks told when a step waits longer than its timeout."
    )


class NotificationSettings(_Section):
    """Telling approvers that an access request waits for them: by e-mail and webhooks, per
    approval template. Nothing configured: nobody is told."""

    smtp: SmtpSettings | None = Field(None, description="The mail server; needed for `email`.")
    people: dict[str, PersonSettings] = Field(
        default_factory=dict, description="Approvers by name (the `sub` policies see)."
    )
    webhooks: dict[str, WebhookSettings] = Field(
        default_factory=dict, description="Webhook endpoints by name."
    )
    templates: dict[str, NotificationTemplateSettings] = Field(
        default_factory=dict,
        description='Who is told, per approval template; `"*"` for templates not named.',
    )

    @model_validator(mode="after")
    def _references(self) -> NotificationSettings:
        problems = []
        for name in self.people:
            if not _PERSON_NAME.fullmatch(name):
                problems.append(f"people: {name[:50]!r} is not a usable name")
        for name in self.webhooks:
            if not _WEBHOOK_NAME.fullmatch(name):
                problems.append(f"webhooks: {name[:50]!r}: 1 to 63 letters, digits and _ . -")
        for name, person in self.people.items():
            if person.webhook is not None and person.webhook not in self.webhooks:
                problems.append(
                    f"people.{name}.webhook: {person.webhook!r} is not in [notifications.webhooks]"
                )
            if person.email is not None and self.smtp is None:
                problems.append(
                    f"people.{name}.email: sending e-mail needs a [notifications.smtp] section"
                )
        for template, routing in self.templates.items():
            if not _TEMPLATE_NAME.fullmatch(template):
                problems.append(f'templates: {template[:50]!r} is not a template name or "*"')
            for option in ("people", "escalation_people"):
                for name in getattr(routing, option):
                    if name not in self.people:
                        problems.append(
                            f"templates.{template}.{option}: {name!r} is not in "
                            "[notifications.people]"
                        )
            for option in ("webhooks", "escalation_webhooks"):
                for name in getattr(routing, option):
                    if name not in self.webhooks:
                        problems.append(
                            f"templates.{template}.{option}: {name!r} is not in "
                            "[notifications.webhooks]"
                        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def routing(self, template: str) -> NotificationTemplateSettings | None:
        """Who is told about `template` (its own table, else `"*"`); None: nobody."""
        return self.templates.get(template) or self.templates.get("*")


STORE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
StoreName = Annotated[str, Field(pattern=STORE_NAME_PATTERN)]


# A name the bridge gives a transmitter or receiver of Shared Signals events (a Cedar entity
# id, an audit actor, part of a log line).
_EVENT_PARTY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class EventTransmitterPeerSettings(_Section):
    """A transmitter whose Security Event Tokens the bridge accepts (SSF 1.0, RFC 8417):
    pushed to `/ssf/events` (RFC 8935) or, with `poll_url`, polled (RFC 8936)."""

    name: str = Field(
        pattern=_EVENT_PARTY_NAME,
        description=(
            'Its name: the Cedar principal `transmitter::"<name>"` of the decisions its events '
            "ask for, and the audit trail's actor."
        ),
    )
    issuer: str = Field(min_length=1, description="The `iss` of its SETs.")
    jwks: dict[str, Any] | None = Field(None, description="Its JWKS, inline.")
    jwks_uri: HttpUrl | None = Field(None, description="Where to fetch its JWKS.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["ES256", "ES384", "RS256", "PS256", "EdDSA"],
        description="Signature algorithms accepted on its SETs (asymmetric ones only).",
    )
    audience: str | None = Field(
        None,
        description=(
            "The `aud` its SETs must carry; default: the push endpoint's URL, "
            "`<server.public_url>/ssf/events`."
        ),
    )
    events: list[str] = Field(
        min_length=1,
        description=(
            "The event types (URIs) it may send (docs/events.md); a SET of another type is refused."
        ),
    )
    subject_type: str = Field(
        "user",
        min_length=1,
        description="AuthZEN `subject.type` of the subjects its events name.",
    )
    store: StoreName = Field(
        "default", description="The policy store that decides requests its events open."
    )
    poll_url: HttpUrl | None = Field(
        None, description="Poll this endpoint for its SETs (RFC 8936) rather than wait for pushes."
    )
    poll_authorization_file: Path | None = Field(
        None, description="File holding the `Authorization` header value sent with each poll."
    )
    allow_private_network: bool = Field(
        False,
        description="Allow `poll_url` on a private or loopback address, and plain http to "
        "loopback (local testing).",
    )

    @model_validator(mode="after")
    def _keys_and_algorithms(self) -> EventTransmitterPeerSettings:
        if bool(self.jwks) == bool(self.jwks_uri):
            raise ValueError("give exactly one of `jwks` and `jwks_uri`")
        weak = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        if weak:
            raise ValueError(f"algorithms: {weak[0]} is not an asymmetric signature algorithm")
        if self.poll_authorization_file is not None and self.poll_url is None:
            raise ValueError("`poll_authorization_file` goes with `poll_url`")
        if self.poll_url is not None:
            _check_outbound(str(self.poll_url), self.allow_private_network, "poll_url")
        return self


class EventReceiverPeerSettings(_Section):
    """A receiver of the bridge's own events, allowed to manage streams at its transmitter."""

    name: str = Field(pattern=_EVENT_PARTY_NAME, description="Its name (logs, stream owner).")
    issuer: str = Field(
        min_length=1,
        description="The issuer (one of `oauth.trusted_issuers`) of its bearer tokens.",
    )
    subject: str = Field(min_length=1, description="The `sub` of its bearer tokens.")
    audience: str = Field(min_length=1, description="The `aud` of the SETs sent on its streams.")
    max_streams: int = Field(5, ge=1, le=100, description="Most streams it may have at once.")
    allow_private_network: bool = Field(
        False,
        description="Allow its push `endpoint_url` on a private or loopback address, and plain "
        "http to loopback (local testing).",
    )


class EventTransmitterSettings(_Section):
    """The bridge as an SSF transmitter of its own events (docs/events.md)."""

    enabled: bool = Field(
        False,
        description="Serve `/.well-known/ssf-configuration`, the stream management API and "
        "poll delivery, and send events on the receivers' streams.",
    )
    receivers: list[EventReceiverPeerSettings] = Field(
        default_factory=list, description="The receivers allowed to create streams."
    )
    audience: str | None = Field(
        None,
        description="The `aud` receivers' bearer tokens must carry at the management API; "
        "default: `<server.public_url>/ssf`.",
    )
    default_subjects: Literal["ALL", "NONE"] = Field(
        "ALL",
        description="`ALL`: a new stream carries events about every subject until the receiver "
        "removes some; `NONE`: only about subjects it adds.",
    )
    min_verification_interval_seconds: int = Field(
        10, ge=0, description="Least time between two verification requests on one stream."
    )
    max_poll_events: int = Field(100, ge=1, le=1000, description="Most SETs one poll answers with.")
    poll_retention_seconds: int = Field(
        7 * 86_400, ge=60, description="How long a SET waits for a poll before it is dropped."
    )


class EventsSettings(_Section):
    """Shared Signals events: the transmitters the bridge receives from, and the bridge as a
    transmitter of its own (docs/events.md)."""

    transmitters: list[EventTransmitterPeerSettings] = Field(
        default_factory=list, description="Transmitters whose events the bridge acts on."
    )
    max_age_seconds: int = Field(
        300, ge=10, le=86_400, description="Oldest `iat` a received SET may carry."
    )
    leeway_seconds: int = Field(
        30, ge=0, le=300, description="How far in the future a received SET's `iat` may be."
    )
    transmitter: EventTransmitterSettings = Field(default_factory=EventTransmitterSettings)

    @model_validator(mode="after")
    def _unique_names(self) -> EventsSettings:
        for kind, parties in (
            ("transmitters", self.transmitters),
            ("transmitter.receivers", self.transmitter.receivers),
        ):
            names = [party.name for party in parties]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: two have the same name")
        issuers = [t.issuer for t in self.transmitters]
        if len(set(issuers)) != len(issuers):
            raise ValueError("transmitters: two have the same issuer")
        return self


def _check_outbound(url: str, allow_private: bool, option: str) -> None:
    """An https URL to a public host, or (allowed) plain http to loopback."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not allow_private:
        raise ValueError(f"{option}: plain http only with `allow_private_network = true`")
    try:
        literal = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        literal = None
    private = parts.hostname == "localhost" or (literal is not None and not literal.is_global)
    if private and not allow_private:
        raise ValueError(f"{option}: a private or loopback address needs allow_private_network")


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    reload: ReloadSettings = Field(default_factory=ReloadSettings)
    stores: dict[StoreName, StoreSettings] = Field(
        default_factory=lambda: {"default": StoreSettings(path=Path("policies/default"))},
        description="Named Cedar policy stores; `default` answers at `/access/v1/...`.",
    )
    pdp: PDPSettings = Field(default_factory=PDPSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    front_door: FrontDoorSettings = Field(default_factory=FrontDoorSettings)
    access_requests: AccessRequestSettings = Field(default_factory=AccessRequestSettings)
    deferral: DeferralSettings = Field(default_factory=DeferralSettings)
    ciba: CibaSettings = Field(default_factory=CibaSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)

    # Where relative store paths are resolved from: the folder of the config file.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _approver_issuer_is_trusted(self) -> Settings:
        # Otherwise every approver would meet a 401 with nothing in the logs to say why.
        issuer = self.access_requests.approver_issuer
        trusted = {i.issuer for i in self.oauth.trusted_issuers}
        if self.access_requests.demo_approver_key_file is not None:
            trusted.add(DEMO_APPROVER_ISSUER)
        if issuer is not None and issuer not in trusted:
            raise ValueError(
                f"access_requests.approver_issuer {issuer!r} is not one of oauth.trusted_issuers"
            )
        return self

    @model_validator(mode="after")
    def _approver_tokens_serve_one_purpose(self) -> Settings:
        # One credential, one purpose: a user's token held by a client for token exchange
        # must never open the approver API (nor an approver's token be exchanged).
        audience = self.approver_audience
        if audience in self.subject_token_audiences():
            raise ValueError(
                f"access_requests.approver_audience {audience!r} is an audience the bridge "
                "accepts subject tokens or assertions with: give approver tokens their own"
            )
        return self

    @model_validator(mode="after")
    def _event_parties_are_known(self) -> Settings:
        # A receiver whose tokens no trusted issuer signs, or a transmitter whose requests no
        # store decides, would meet refusals with nothing in the logs to say why.
        trusted = {i.issuer for i in self.oauth.trusted_issuers}
        for receiver in self.events.transmitter.receivers:
            if receiver.issuer not in trusted:
                raise ValueError(
                    f"events.transmitter.receivers: {receiver.name}'s issuer "
                    f"{receiver.issuer!r} is not one of oauth.trusted_issuers"
                )
        for transmitter in self.events.transmitters:
            if transmitter.store not in self.stores:
                raise ValueError(
                    f"events.transmitters: {transmitter.name}'s store {transmitter.store!r} "
                    "is not configured"
                )
        # One credential, one purpose: receivers' tokens are for the stream management API.
        management = self.events.transmitter.audience or (
            self.server.public_url.rstrip("/") + "/ssf"
        )
        if self.events.transmitter.enabled and management in self.subject_token_audiences():
            raise ValueError(
                f"events.transmitter.audience {management!r} is an audience the bridge accepts "
                "subject tokens or assertions with: give receivers' tokens their own"
            )
        return self

    @property
    def approver_audience(self) -> str:
        """The `aud` of approver tokens (`access_requests.approver_audience` or the approver
        API's URL)."""
        configured = self.access_requests.approver_audience
        return configured or self.server.public_url.rstrip("/") + "/access/v1/approvals"

    def subject_token_audiences(self) -> set[str]:
        """Every `aud` under which a trusted issuer's token is accepted as a subject token,
        an actor token or an authorization grant (jwt-bearer: the issuer or the token
        endpoint)."""
        audiences = {self.issuer, self.issuer + "/token"}
        audiences.update(i.audience for i in self.oauth.trusted_issuers if i.audience)
        return audiences

    def store_path(self, name: str) -> Path:
        return self.resolve(self.stores[name].path)

    def resolve(self, path: Path) -> Path:
        """A configured path, relative to the configuration file's folder."""
        return path if path.is_absolute() else self.base_dir / path

    @property
    def issuer(self) -> str:
        return (self.oauth.issuer or self.server.public_url).rstrip("/")


def load_settings(path: Path | None) -> Settings:
    """Read settings from TOML (all defaults when `path` is None). Raises `ConfigError`."""
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, f"cannot read: {exc.strerror}")]) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python before 3.14 gives the position only inside the message.
        at = re.search(r"at line (\d+)", str(exc))
        line = int(at.group(1)) if at else None
        raise ConfigError([ConfigProblem(str(path), line, str(exc))]) from exc
    from pydantic import ValidationError

    try:
        settings = Settings.model_validate({**raw, "base_dir": path.parent})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(str(p) for p in err["loc"])
            problems.append(
                ConfigProblem(str(path), _line_of(text, loc), f"{'.'.join(loc)}: {err['msg']}")
            )
        raise ConfigError(problems) from exc
    return settings


ConfigProblem = Problem


class ConfigError(ProblemsError):
    """A configuration file that cannot be used, with every problem found in it."""


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """Best line for a problem at `loc`: the key's own line, else its table's header."""
    lines = text.splitlines()
    for split in range(len(loc), -1, -1):
        table, rest = loc[:split], loc[split:]
        header_at: int | None = None
        if table:
            header = "[" + ".".join(table) + "]"
            header_at = next((i for i, ln in enumerate(lines) if ln.strip() == header), None)
            if header_at is None:
                continue
        if not rest:
            return None if header_at is None else header_at + 1
        begin = 0 if header_at is None else header_at + 1
        for i in range(begin, len(lines)):
            stripped = lines[i].strip()
            if stripped.startswith("["):
                break
            if "=" in stripped and stripped.split("=", 1)[0].strip().strip('"') == rest[0]:
                return i + 1
        if header_at is not None:
            return header_at + 1
    return None
