"""The OAuth side of the store contract: the replay cache, signing keys, refresh tokens and
revoked access tokens.

Nothing secret is kept in clear: refresh tokens are looked up by hash, signing keys' private
parts are sealed before they reach a store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from .access_requests import subject_key


class ReplayCache(Protocol):
    async def use_once(self, namespace: str, value: str, expires_at: float) -> bool:
        """Record `value` in `namespace` until `expires_at` (epoch seconds).

        True the first time; False when it was already recorded and has not expired — the
        caller refuses the replay. Used for DPoP proof `jti`s and client assertion `jti`s.
        """
        ...


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    alg: str
    public_jwk: str  # JSON
    private_jwk_sealed: bytes  # sealed private JWK (bridge.jose.signing_keys)
    created_at: float
    retired_at: float | None = None  # no longer signs from then on
    expires_at: float | None = None  # leaves the JWKS from then on


class SigningKeyStore(Protocol):
    async def signing_keys(self) -> list[SigningKeyRecord]:
        """Every key not yet past `expires_at`, newest first."""
        ...

    async def add_signing_key(
        self, record: SigningKeyRecord, *, retire_others_at: float, others_expire_at: float
    ) -> None:
        """Store `record` as the active key; in the same transaction, retire every other
        active key and keep it published until `others_expire_at`. Two rotations at once
        (from two replicas) leave one active key: the later one."""
        ...

    async def add_first_signing_key(self, record: SigningKeyRecord) -> bool:
        """Store `record` as the active key unless a key is active already; False (nothing
        written) then. Replicas starting together on an empty database make one key between
        them, and none retires a key another has just begun to sign with."""
        ...


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    token_hash: str  # SHA-256 of the token, hex
    family_id: str  # every rotation of one grant shares it
    client_id: str
    grant: str  # JSON: what the token may be refreshed into (principal, act, details, ...)
    issued_at: float
    expires_at: float
    used_at: float | None = None
    revoked_at: float | None = None

    @property
    def subject_key(self) -> str | None:
        """`subject_key` of the grant's `subject` (the principal), by which a subject's
        refresh tokens are found; None when the grant names none."""
        return grant_subject_key(self.grant)


def grant_subject_key(grant_json: str) -> str | None:
    """`subject_key` of the `subject` a refresh token's grant (JSON text) names, if any."""
    try:
        grant = json.loads(grant_json)
    except ValueError:
        return None
    subject = grant.get("subject") if isinstance(grant, dict) else None
    return subject_key(subject) if isinstance(subject, dict) else None


class RefreshTokenStore(Protocol):
    async def save_refresh_token(self, record: RefreshTokenRecord) -> None:
        """Store a new token of its family. Saved into a family that has been revoked, it is
        saved revoked: a rotation racing a revocation, or a reuse found at another replica
        between the rotation's use of the old token and its save of the new one, does not
        leave the grant alive."""
        ...

    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None: ...

    async def use_refresh_token(self, token_hash: str, now: float) -> RefreshTokenRecord | None:
        """Mark the token used, atomically. Returns it when it was active (unused, not
        revoked, not expired). A used token presented again revokes its whole family (the
        token has leaked) and returns None."""
        ...

    async def revoke_refresh_family(self, family_id: str, now: float) -> None:
        """Revoke every token of the family, and (see `save_refresh_token`) any saved into
        it later."""
        ...


class RevocationStore(Protocol):
    async def revoke_access_token(self, jti: str, expires_at: float) -> None: ...

    async def is_access_token_revoked(self, jti: str) -> bool: ...
