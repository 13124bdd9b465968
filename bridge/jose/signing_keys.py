"""The bridge's signing keys (access tokens, binding tokens, callbacks): generated on first
start, kept in the store, rotated on demand.

Private keys reach the store only sealed (`sealing`), so a database dump signs nothing.
Rotation publishes the new key at once and keeps every retired public key in the JWKS until
the tokens it signed have expired. A running server picks up a rotation made by another
process (`bridge keys rotate`) within `cache_seconds`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey

from ..store.contract import SigningKeyRecord, SigningKeyStore
from .sealing import seal, unseal

Key = ECKey | RSAKey | OKPKey

# Where the bridge publishes the public halves (its `jwks_uri`): access tokens, binding
# tokens and callbacks are all verified against them.
JWKS_PATH = "/jwks"


def generate_key(alg: str) -> Key:
    key: Key
    if alg == "ES256":
        key = ECKey.generate_key("P-256", auto_kid=True)
    elif alg == "ES384":
        key = ECKey.generate_key("P-384", auto_kid=True)
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", auto_kid=True)
    elif alg in ("RS256", "PS256"):
        key = RSAKey.generate_key(3072, auto_kid=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return key


def import_key(jwk: dict[str, Any]) -> Key:
    kty = jwk.get("kty")
    if kty == "EC":
        return ECKey.import_key(jwk)
    if kty == "RSA":
        return RSAKey.import_key(jwk)
    if kty == "OKP":
        return OKPKey.import_key(jwk)
    raise ValueError(f"unsupported key type {kty}")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    key: Key


class SigningKeys:
    def __init__(
        self, store: SigningKeyStore, kek: bytes, alg: str, *, cache_seconds: float = 2.0
    ) -> None:
        self._store = store
        self._kek = kek
        self._alg = alg
        self._cache_seconds = cache_seconds
        self._loaded_at = -1.0
        self._records: list[SigningKeyRecord] = []
        self._active: SigningKey | None = None
        self._public: dict[str, SigningKey] = {}

    async def ensure(self) -> None:
        """Make the first key when the store has none that can sign (once, should several
        replicas start together on an empty database)."""
        await self._refresh(force=True)
        if self._active is None:
            await self._store.add_first_signing_key(self._new_record(time.time()))
            await self._refresh(force=True)

    async def rotate(self, keep_published_for: float) -> str:
        """A new active key; the old ones stop signing now and leave the JWKS after
        `keep_published_for` seconds (the longest lifetime of a token they signed)."""
        now = time.time()
        record = self._new_record(now)
        await self._store.add_signing_key(
            record, retire_others_at=now, others_expire_at=now + keep_published_for
        )
        await self._refresh(force=True)
        return record.kid

    def _new_record(self, now: float) -> SigningKeyRecord:
        key = generate_key(self._alg)
        return SigningKeyRecord(
            kid=key.kid or key.thumbprint(),
            alg=self._alg,
            public_jwk=json.dumps(key.as_dict(private=False)),
            private_jwk_sealed=seal(self._kek, key.kid or "", key.as_dict(private=True)),
            created_at=now,
        )

    async def active(self) -> SigningKey:
        await self._refresh()
        if self._active is None:
            raise RuntimeError("no active signing key (was ensure() called?)")
        return self._active

    async def verification_key(self, kid: str) -> SigningKey | None:
        await self._refresh()
        found = self._public.get(kid)
        if found is None:
            # Perhaps rotated by another process since the last look.
            await self._refresh(force=True)
            found = self._public.get(kid)
        return found

    async def jwks(self) -> dict[str, Any]:
        # Always from the store: a rotation must be visible at once.
        await self._refresh(force=True)
        keys = []
        for record in self._records:
            jwk = json.loads(record.public_jwk)
            keys.append({**jwk, "kid": record.kid, "alg": record.alg, "use": "sig"})
        return {"keys": keys}

    async def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._loaded_at < self._cache_seconds:
            return
        records = await self._store.signing_keys()
        self._loaded_at = now
        if [(r.kid, r.retired_at) for r in records] == [
            (r.kid, r.retired_at) for r in self._records
        ]:
            return  # nothing changed: keep the imported keys
        self._records = records
        self._public = {
            r.kid: SigningKey(r.kid, r.alg, import_key(json.loads(r.public_jwk))) for r in records
        }
        signing = next((r for r in records if r.retired_at is None), None)
        self._active = (
            None
            if signing is None
            else SigningKey(
                signing.kid,
                signing.alg,
                import_key(unseal(self._kek, signing.kid, signing.private_jwk_sealed)),
            )
        )
