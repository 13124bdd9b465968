"""Secrets at rest: the key-encryption key (KEK) and AES-GCM sealing under it (or under keys
derived from it).

Whatever the store holds that must be used again in clear (private signing keys, a deferral
code a ping will carry, a client's notification token) is sealed with a purpose label bound
into the ciphertext, so a value sealed for one row or use never opens for another. The KEK
itself never enters the database. It comes from the environment variable
`BRIDGE_KEY_ENCRYPTION_KEY` when set (base64 of 32 bytes; what a secret manager or an
orchestrator injects), else from `oauth.key_encryption_key_file`, created (mode 0600) on first
start. A KEK file beside the SQLite database defeats the point — whoever copies the folder has
both — so the bridge warns at start when it finds it there (`kek_beside`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_ENVIRONMENT = "BRIDGE_KEY_ENCRYPTION_KEY"
KEK_BYTES = 32
_NONCE_BYTES = 12


class KeyEncryptionKeyError(ValueError):
    """The configured key-encryption key cannot be used (the message says why)."""


def load_key_encryption_key(path: Path, environ: Mapping[str, str] = os.environ) -> bytes:
    """The KEK: from `BRIDGE_KEY_ENCRYPTION_KEY` when set, else from `path` (made when the
    file is absent)."""
    value = environ.get(KEK_ENVIRONMENT)
    if value:
        return _decode(value, KEK_ENVIRONMENT)
    if not path.exists():
        _make_key_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyEncryptionKeyError(f"{path}: cannot read the key-encryption key ({exc})") from None
    return _decode(text, str(path))


def _make_key_file(path: Path) -> None:
    """Write a fresh KEK to `path` (0600), unless another process did first. The key is
    written beside it and linked into place whole: workers starting together never read a
    file that another has made but not yet filled."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(new_key_encryption_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(draft, path)
    finally:
        draft.unlink()


def new_key_encryption_key() -> str:
    """A fresh KEK, base64: what to put in the file or the environment variable."""
    return base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode("ascii")


def kek_beside(kek_file: Path, database: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """True when the KEK is read from a file in the database's own folder."""
    if environ.get(KEK_ENVIRONMENT):
        return False
    return kek_file.resolve().parent == database.resolve().parent


def seal(key: bytes, purpose: str, value: dict[str, Any]) -> bytes:
    """AES-GCM of `value` as JSON, with `purpose` as associated data."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    plain = json.dumps(value).encode()
    return nonce + AESGCM(key).encrypt(nonce, plain, purpose.encode())


def unseal(key: bytes, purpose: str, sealed: bytes) -> dict[str, Any]:
    """The value `seal` sealed for `purpose`; `cryptography.exceptions.InvalidTag` when the
    key or the purpose differ or the bytes were changed."""
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    data: dict[str, Any] = json.loads(AESGCM(key).decrypt(nonce, body, purpose.encode()))
    return data


def _decode(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyEncryptionKeyError(f"{where}: the key-encryption key is not base64") from None
    if len(raw) != KEK_BYTES:
        raise KeyEncryptionKeyError(
            f"{where}: a key-encryption key must be {KEK_BYTES} bytes (base64)"
        )
    return raw
