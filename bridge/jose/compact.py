"""Reading a compact JWS (RFC 7515 §7.1) before anything trusts it: one bounded parser for
every JWT the bridge is handed (subject, actor and approver tokens, assertions, client
assertions, PEP bearer tokens, DPoP proofs, binding tokens, its own access tokens).

The header and the payload are decoded with strict base64url and parsed as strict, bounded
JSON (`strict_json`), so a token nested thousands of levels deep, or carrying a string that
is not Unicode, is refused here with `MalformedJWS` rather than reaching a JOSE library's
own parser. Nothing here checks a signature: callers verify with the keys the parsed header
points them to.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from .strict_json import StrictJSONError, loads

# Longer than any token the bridge accepts (an RSA-8192 DPoP proof is about 3 kB).
MAX_TOKEN_LENGTH = 16_384
# JOSE headers and JWT claims are shallow; `act` chains and RAR entries need a few levels.
MAX_DEPTH = 32


class MalformedJWS(ValueError):
    """Not a compact JWS with a JSON object header and payload; the message says what."""


@dataclass(frozen=True, slots=True)
class CompactJWS:
    header: dict[str, Any]
    payload: dict[str, Any]  # the claims of a JWT
    signing_input: bytes  # `<header>.<payload>` as sent, what the signature covers
    signature: bytes


def parse_compact(token: str, *, max_length: int = MAX_TOKEN_LENGTH) -> CompactJWS:
    """The parts of `token`; `MalformedJWS` when it is too long, not three base64url
    segments, or its header or payload is not a strict JSON object."""
    if len(token) > max_length:
        raise MalformedJWS(f"longer than {max_length} characters")
    if not token.isascii():
        raise MalformedJWS("not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJWS("not three dot-separated segments")
    header = _object(parts[0], "header")
    payload = _object(parts[1], "payload")
    return CompactJWS(
        header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), b64decode(parts[2])
    )


def b64decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): anything outside the alphabet is
    refused rather than skipped, as the lenient decoder would."""
    if "=" in segment or "+" in segment or "/" in segment:
        raise MalformedJWS("not base64url")
    try:
        return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedJWS("not base64url") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _object(segment: str, name: str) -> dict[str, Any]:
    try:
        value = loads(b64decode(segment), max_depth=MAX_DEPTH)
    except StrictJSONError as exc:
        raise MalformedJWS(f"the {name} is not strict JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedJWS(f"the {name} is not a JSON object")
    return value
