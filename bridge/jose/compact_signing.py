"""Compact JWS (RFC 7515 §7.1) signed with one of the bridge's own keys, on the hot path.

What the bridge signs per request (every access token) it builds itself: its header names
the key's own algorithm, so joserfc's checks of a header against its registry, repeated for
every token, find nothing. Here the protected header is encoded once per key and header,
and the signature comes straight from `cryptography`, as joserfc computes it:

- ES256 / ES384 (RFC 7518 §3.4): ECDSA with SHA-256 / SHA-384, the DER signature turned
  into R ‖ S, each as many octets as the curve's order;
- EdDSA (RFC 8037 §3.1): Ed25519's own signature.

Other algorithms (RS256, PS256) are signed by joserfc, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey
from joserfc.util import json_b64encode, urlsafe_b64encode

from .signing_keys import Key, SigningKey

Signer = Callable[[bytes], bytes]

_EC_HASHES = {"ES256": (hashes.SHA256(), "P-256"), "ES384": (hashes.SHA384(), "P-384")}

# kid → (the key it was made for, its signer or None for joserfc); a rotated key gets a new
# kid, and the identity check catches a key imported anew under the same one.
_signers: dict[str, tuple[Key, Signer | None]] = {}
# (header members) → the encoded protected header.
_headers: dict[tuple[tuple[str, Any], ...], bytes] = {}
_MAX_HEADERS = 64


def sign_compact(signing: SigningKey, header: dict[str, Any], payload: bytes) -> str:
    """`payload` signed with `signing` under the protected `header` (whose `alg` must be the
    key's), in the compact serialisation."""
    signer = _signer(signing)
    if signer is None or header.get("alg") != signing.alg:
        return jws.serialize_compact(header, payload, signing.key, algorithms=[signing.alg])
    signing_input = _header_segment(header) + b"." + urlsafe_b64encode(payload)
    return (signing_input + b"." + urlsafe_b64encode(signer(signing_input))).decode("ascii")


def _signer(signing: SigningKey) -> Signer | None:
    cached = _signers.get(signing.kid)
    if cached is not None and cached[0] is signing.key:
        return cached[1]
    signer = _make_signer(signing)
    _signers[signing.kid] = (signing.key, signer)
    return signer


def _make_signer(signing: SigningKey) -> Signer | None:
    key = signing.key
    if isinstance(key, ECKey) and signing.alg in _EC_HASHES:
        hash_alg, curve = _EC_HASHES[signing.alg]
        private = key.private_key
        if key.curve_name != curve or not isinstance(private, EllipticCurvePrivateKey):
            return None
        algorithm = ECDSA(hash_alg)
        size = (key.curve_key_size + 7) // 8

        def ecdsa(message: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(message, algorithm))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return ecdsa
    if isinstance(key, OKPKey) and signing.alg == "EdDSA":
        private_okp = key.private_key
        if not isinstance(private_okp, Ed25519PrivateKey):
            return None
        return private_okp.sign
    return None


def _header_segment(header: dict[str, Any]) -> bytes:
    try:
        members = tuple(header.items())
        cached = _headers.get(members)
    except TypeError:  # a member whose value cannot be a key: encoded each time
        return json_b64encode(header)
    if cached is None:
        cached = json_b64encode(header)
        if len(_headers) < _MAX_HEADERS:
            _headers[members] = cached
    return cached
