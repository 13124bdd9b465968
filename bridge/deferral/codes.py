"""Deferral codes, their lookup hash, the dedupe key of a request, and sealing of what must
be sent again.

A code is 256 random bits, base64url without padding (shared/specs/dtr.md §10: never a
UUID). The store finds a code by HMAC-SHA-256 under a lookup key, so a database dump yields
no usable code. The plaintext code (for the ping body, and to answer a repeated request with
the same code) and the client's notification token are kept only sealed (AES-GCM) under a
second key. A repeated request is recognised by its dedupe key, HMAC-SHA-256 of the
request's canonical form under a third key, so the table holds no readable request identity
beside the snapshot. All keys are derived from the key-encryption key
(`oauth.key_encryption_key_file`), which never enters the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag

from ..jose.sealing import seal, unseal

# Labels of the derived keys: changing one makes every stored code unusable.
_LOOKUP_LABEL = b"bridge deferral code lookup v1"
_SEAL_LABEL = b"bridge deferral sealing v1"
_DEDUPE_LABEL = b"bridge deferral dedupe v1"

# Longer values are not codes this bridge issued (43 characters): refused before any lookup.
MAX_CODE_LENGTH = 128


class SealError(Exception):
    """A sealed value could not be opened (other key, damaged, or not bound to this row)."""


def new_code() -> str:
    """A fresh deferral code: 256 bits from the CSPRNG, base64url, 43 characters."""
    return secrets.token_urlsafe(32)


class DeferralKeys:
    """The sub-keys of the deferral part, derived from the key-encryption key."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) < 32:
            raise ValueError("the key-encryption key must have at least 32 bytes")
        self._lookup = hmac.new(kek, _LOOKUP_LABEL, hashlib.sha256).digest()
        self._seal = hmac.new(kek, _SEAL_LABEL, hashlib.sha256).digest()
        self._dedupe = hmac.new(kek, _DEDUPE_LABEL, hashlib.sha256).digest()

    def code_hash(self, code: str) -> str:
        """The keyed lookup hash of `code` (hex): what the store keeps instead of the code."""
        data = code.encode("utf-8", "surrogatepass")
        return hmac.new(self._lookup, data, hashlib.sha256).hexdigest()

    def dedupe_key(self, canonical: bytes) -> str:
        """The keyed hash (hex) of a request's canonical form (RFC 8785 JSON): equal for the
        same request, and no use to whoever reads it without the key-encryption key."""
        return hmac.new(self._dedupe, canonical, hashlib.sha256).hexdigest()

    def seal(self, purpose: str, value: dict[str, Any]) -> bytes:
        """AES-GCM of `value` (JSON). `purpose` is authenticated: a value sealed for one
        row or use does not open for another (e.g. `code:<code_hash>`)."""
        return seal(self._seal, purpose, value)

    def unseal(self, purpose: str, sealed: bytes) -> dict[str, Any]:
        try:
            return unseal(self._seal, purpose, sealed)
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"cannot open a sealed {purpose.split(':', 1)[0]}") from exc

    # The sealed members of a deferral row, each bound to that row's code hash.

    def seal_code(self, code_hash: str, code: str) -> bytes:
        return self.seal(f"code:{code_hash}", {"code": code})

    def unseal_code(self, code_hash: str, sealed: bytes) -> str:
        return str(self.unseal(f"code:{code_hash}", sealed)["code"])

    def seal_notification_token(self, code_hash: str, token: str) -> bytes:
        return self.seal(f"notification_token:{code_hash}", {"token": token})

    def unseal_notification_token(self, code_hash: str, sealed: bytes) -> str:
        return str(self.unseal(f"notification_token:{code_hash}", sealed)["token"])
