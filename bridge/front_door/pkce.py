"""RFC 7636 Proof Key for Code Exchange, `S256` only, for every client (OAuth 2.1 §4.1.1,
RFC 9700 §2.1.1: `plain` protects nothing against an attacker who reads the request)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from ..errors import InvalidGrant, InvalidRequest

S256 = "S256"
# §4.1 and §4.2: 43-128 characters of the unreserved set; an S256 challenge is 43.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """§4.3: the challenge of an authorization request; the method must be named (its
    default is `plain`, which is refused)."""
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE, S256)")
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not a base64url SHA-256 digest")
    return challenge


def check_verifier(verifier: str, challenge: str) -> None:
    """§4.6: BASE64URL(SHA256(code_verifier)) must equal the challenge, else invalid_grant."""
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is not 43-128 unreserved characters")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if not hmac.compare_digest(computed, challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
