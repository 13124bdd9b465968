"""What the operator configures to sign people in at the organisation's OpenID Provider.

A pydantic model (the edge of the part): the bridge's configuration will hold it as one
section; this part reads nothing else of the configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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
# RFC 6749 §3.3 scope-token characters.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# An AuthZEN subject property name as it appears in policies.
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,99}")

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


class UpstreamSignInSettings(BaseModel):
    """Sign-in as a relying party of one OpenID Provider (OpenID Connect Core 1.0)."""

    # A misspelt option is a mistake worth reporting; a validation error never echoes the
    # input, which may be the client secret.
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
