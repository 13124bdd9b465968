"""DPoP proofs (RFC 9449): the client proves, per request, that it holds a private key.

The proof is checked here without a general JOSE pipeline: each part is decoded once, the
public key is imported once per distinct key (cached by its RFC 7638 thumbprint input), and
joserfc's algorithm objects only verify the signature. That keeps the token endpoint fast and
lets proofs carry RSA keys up to 8192 bits, which joserfc's default size limits refuse.

The caller passes the value of the one `DPoP` header; a request with several `DPoP` headers
is the caller's to refuse (RFC 9449 §4.3, check 1). Server nonces (§8) are stateless: an
HMAC over a timestamp, so every replica given the same `nonce_secret` accepts the others'.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from ..jose.compact import MalformedJWS, parse_compact
from ..settings import DPoPSettings
from ..store.contract import ReplayCache
from .errors import InvalidDPoPProof, UseDPoPNonce

# RFC 7638 §3.2: the members a thumbprint covers, which are also all a public key needs.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_KEY_CLASSES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SIGNING_CURVES = frozenset({"Ed25519", "Ed448"})  # OKP keys that sign (not X25519/X448)
MIN_RSA_BITS = 2048
# An RSA-8192 proof is about 3.7 kB; the cap keeps a hostile header from costing more.
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
_NONCE_CONTEXT = b"bridge dpop nonce v1"


@dataclass(frozen=True)
class DPoPProof:
    """A verified proof. `jkt` (RFC 7638 thumbprint) is what a token's `cnf.jkt` binds to."""

    jkt: str
    jwk: dict[str, Any]
    jti: str
    iat: int
    htm: str
    htu: str


class DPoPVerifier:
    def __init__(
        self,
        settings: DPoPSettings,
        replay: ReplayCache,
        *,
        nonce_secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Never `none` or a shared-secret algorithm, whatever the configuration says.
        self._algorithms = {
            name: JWSRegistry.algorithms[name]
            for name in settings.algorithms
            if name in JWSRegistry.algorithms and name != "none" and not name.startswith("HS")
        }
        self._leeway = settings.iat_leeway_seconds
        self._require_nonce = settings.require_nonce
        self._nonce_lifetime = settings.nonce_lifetime_seconds
        # Without a shared secret nonces hold for this process only (fine for one replica).
        self._nonce_key = nonce_secret or secrets.token_bytes(32)
        self._replay = replay
        self._clock = clock

    async def verify_sent(
        self, headers: Sequence[str], *, method: str, url: str, required: bool = False
    ) -> DPoPProof | None:
        """The proof in a request's `DPoP` headers (RFC 9449 §4.3: at most one), checked as
        `verify` does; `required`: a request without one is refused (a client registered
        to use DPoP)."""
        if len(headers) > 1:
            raise InvalidDPoPProof("more than one DPoP header")
        proof = await self.verify(headers[0] if headers else None, method=method, url=url)
        if proof is None and required:
            raise InvalidDPoPProof("this client must send a DPoP proof")
        return proof

    async def verify(
        self, header: str | None, *, method: str, url: str, access_token: str | None = None
    ) -> DPoPProof | None:
        """Check the proof in `header` for a `method` request to `url` (the server's own view
        of it, not the Host header's). None when there is no proof; `InvalidDPoPProof` or
        `UseDPoPNonce` when it fails. With `access_token`, the proof must carry its `ath`."""
        if header is None:
            return None
        jose, claims, signing_input, signature = _split(header)
        if str(jose.get("typ", "")).lower() != "dpop+jwt":
            raise InvalidDPoPProof("DPoP proof: typ must be dpop+jwt")
        alg_name = jose.get("alg")
        alg = self._algorithms.get(alg_name) if isinstance(alg_name, str) else None
        if alg is None:
            raise InvalidDPoPProof("DPoP proof: alg is not accepted")
        if "crit" in jose or "b64" in jose:
            raise InvalidDPoPProof("DPoP proof: header extensions are not accepted")
        jwk, jkt, key = _public_key(jose.get("jwk"))
        try:
            alg.check_key(key)
            valid = alg.verify(signing_input, signature, key)
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            raise InvalidDPoPProof("DPoP proof: signature does not verify with jwk")

        jti, iat, htu = claims.get("jti"), claims.get("iat"), claims.get("htu")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise InvalidDPoPProof("DPoP proof: jti is missing or too long")
        if claims.get("htm") != method:
            raise InvalidDPoPProof("DPoP proof: htm does not match the request method")
        if not isinstance(htu, str) or not _same_url(htu, url):
            raise InvalidDPoPProof("DPoP proof: htu does not match the request URL")
        now = self._clock()
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise InvalidDPoPProof("DPoP proof: iat is missing")
        if not _within(iat, now, self._leeway):
            raise InvalidDPoPProof("DPoP proof: iat is too far from the server's time")
        if access_token is not None and not _ath_matches(claims.get("ath"), access_token):
            raise InvalidDPoPProof("DPoP proof: ath does not match the access token")
        if self._require_nonce and not self._nonce_valid(claims.get("nonce"), now):
            raise UseDPoPNonce(
                "DPoP proof: a fresh server nonce is required",
                headers={"DPoP-Nonce": self.fresh_nonce()},
            )
        # Last, so that only proofs that passed every other check are written to the store.
        if not await self._replay.use_once("dpop:" + jkt, jti, iat + self._leeway * 2):
            raise InvalidDPoPProof("DPoP proof: jti was already used")
        return DPoPProof(jkt, jwk, jti, int(iat), method, htu)

    @property
    def requires_nonce(self) -> bool:
        return self._require_nonce

    def fresh_nonce(self) -> str:
        """A nonce for the `DPoP-Nonce` response header (valid `nonce_lifetime_seconds`)."""
        stamp = int(self._clock()).to_bytes(8, "big")
        return _b64encode(stamp + self._nonce_mac(stamp))

    def _nonce_valid(self, nonce: object, now: float) -> bool:
        if not isinstance(nonce, str) or len(nonce) != 32:
            return False
        try:
            raw = _b64decode(nonce)
        except ValueError:
            return False
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._nonce_mac(stamp)):
            return False
        age = now - int.from_bytes(stamp, "big")
        # Replicas' clocks differ a little: a nonce from slightly "ahead" is still good.
        return -self._leeway <= age <= self._nonce_lifetime

    def _nonce_mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._nonce_key, _NONCE_CONTEXT + stamp, hashlib.sha256).digest()[:16]


def _within(iat: float, now: float, leeway: int) -> bool:
    try:
        return abs(now - iat) <= leeway  # False for NaN
    except OverflowError:  # an integer too large for a float
        return False


def _split(proof: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(JOSE header, claims, signing input, signature) of a compact JWS, each decoded once."""
    try:
        parsed = parse_compact(proof, max_length=MAX_PROOF_LENGTH)
    except MalformedJWS as exc:
        raise InvalidDPoPProof(f"DPoP proof: not a compact JWS ({exc})") from None
    return parsed.header, parsed.payload, parsed.signing_input, parsed.signature


def _public_key(jwk: object) -> tuple[dict[str, Any], str, Key]:
    """(thumbprint members, thumbprint, imported key) of the `jwk` header."""
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("DPoP proof: jwk header is missing")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDPoPProof("DPoP proof: jwk must be a public key")
    kty = jwk.get("kty")
    names = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if names is None or not all(isinstance(jwk.get(n), str) for n in names):
        raise InvalidDPoPProof("DPoP proof: jwk is not an RSA, EC or OKP public key")
    members = {n: jwk[n] for n in names}
    if kty == "RSA" and _rsa_bits(members["n"]) < MIN_RSA_BITS:
        raise InvalidDPoPProof(f"DPoP proof: jwk RSA key is shorter than {MIN_RSA_BITS} bits")
    try:
        jkt, key = _import(json.dumps(members, separators=(",", ":")))
    except ValueError as exc:
        raise InvalidDPoPProof(f"DPoP proof: jwk {exc}") from None
    return members, jkt, key


@lru_cache(maxsize=1024)
def _import(canonical: str) -> tuple[str, Key]:
    """Thumbprint and key for RFC 7638's canonical JSON (sorted members, no whitespace)."""
    members = json.loads(canonical)
    try:
        key = _KEY_CLASSES[members["kty"]].import_key(members)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ValueError("is not a valid public key") from None
    if isinstance(key, OKPKey) and members["crv"] not in _SIGNING_CURVES:
        raise ValueError("OKP key is not a signing key")
    return _b64encode(hashlib.sha256(canonical.encode("ascii")).digest()), key


def _rsa_bits(modulus: str) -> int:
    # Checked before import: joserfc would warn about, then accept, a short key.
    try:
        return int.from_bytes(_b64decode(modulus), "big").bit_length()
    except ValueError:
        return 0


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_url(htu: str, url: str) -> bool:
    normalised = _normalise_htu(htu)
    return normalised is not None and normalised == _normalise_htu(url)


@lru_cache(maxsize=512)
def _normalise_htu(url: str) -> str | None:
    """RFC 9449 §4.3: the URL without query and fragment, normalised per RFC 3986 §6.2.2-3
    (case of scheme and host, percent-encoding, default port, empty path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = _PERCENT.sub(_percent, parts.path) or "/"
    return f"{scheme}://{host}{path}"


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group()[1:], 16))
    return char if char in _UNRESERVED else match.group().upper()


def _ath_matches(ath: object, access_token: str) -> bool:
    expected = _b64encode(hashlib.sha256(access_token.encode("ascii", "replace")).digest())
    return isinstance(ath, str) and hmac.compare_digest(ath.encode(), expected.encode())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    # Strict: the lenient decoder would skip characters outside the alphabet.
    if "=" in segment or "+" in segment or "/" in segment:
        raise ValueError("not base64url")
    return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
