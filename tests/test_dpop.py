"""DPoP proofs (RFC 9449) signed with real keys, from EC P-256 to RSA 8192, and every check
that refuses one. The replay cache is an in-memory stand-in; nothing else is."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from bridge.oauth.dpop import DPoPVerifier
from bridge.oauth.errors import InvalidDPoPProof, UseDPoPNonce
from bridge.settings import DPoPSettings
from tests.conftest import REPO
from tests.memory_replay import MemoryReplay

URL = "https://bridge.example/token"
ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.e30.sig"


KEYS = REPO / "tests" / "data" / "keys"
KEY_MAKERS: dict[str, tuple[Callable[[], Key], str]] = {
    "ec-p256": (lambda: ECKey.generate_key("P-256"), "ES256"),
    "ec-p384": (lambda: ECKey.generate_key("P-384"), "ES384"),
    "ed25519": (lambda: OKPKey.generate_key("Ed25519"), "EdDSA"),
    "rsa-2048": (lambda: RSAKey.generate_key(2048), "RS256"),
    "rsa-4096": (lambda: RSAKey.generate_key(4096), "PS256"),
    # Made once, kept in the repository: generating it takes longer than the rest of the file.
    "rsa-8192": (lambda: RSAKey.import_key((KEYS / "rsa-8192.pem").read_bytes()), "RS256"),
}


@pytest.fixture(scope="session")
def keys() -> Callable[[str], tuple[Key, str]]:
    made: dict[str, tuple[Key, str]] = {}

    def get(name: str) -> tuple[Key, str]:
        if name not in made:
            maker, alg = KEY_MAKERS[name]
            made[name] = (maker(), alg)
        return made[name]

    return get


EC = ECKey.generate_key("P-256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof(
    key: Key = EC,
    alg: str = "ES256",
    *,
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    signer: Key | None = None,
    **claims: Any,
) -> str:
    """A DPoP proof; `header`/`claims` override the correct values, `drop` removes claims."""
    jose = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    jose.update(header or {})
    body = {"jti": f"j-{time.monotonic_ns()}", "htm": "POST", "htu": URL, "iat": int(time.time())}
    body.update(claims)
    for name in drop:
        body.pop(name)
    signing_input = f"{b64(json.dumps(jose).encode())}.{b64(json.dumps(body).encode())}"
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), signer or key)
    return f"{signing_input}.{b64(signature)}"


def verifier(replay: MemoryReplay | None = None, **settings: Any) -> DPoPVerifier:
    secret, clock = settings.pop("nonce_secret", None), settings.pop("clock", time.time)
    return DPoPVerifier(
        DPoPSettings(**settings), replay or MemoryReplay(), nonce_secret=secret, clock=clock
    )


async def refused(v: DPoPVerifier, value: str, **kwargs: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as caught:
        await v.verify(value, method="POST", url=URL, **kwargs)
    return caught.value


# --- valid proofs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KEY_MAKERS))
async def test_valid_proof(keys: Callable[[str], tuple[Key, str]], name: str) -> None:
    key, alg = keys(name)
    value = proof(key, alg)
    result = await verifier().verify(value, method="POST", url=URL)
    assert result is not None
    assert result.jkt == key.thumbprint()  # RFC 7638, as joserfc computes it
    assert result.htm == "POST" and result.htu == URL
    assert "d" not in result.jwk and result.jwk["kty"] == key.key_type


async def test_rsa_8192_with_access_token_and_nonce(keys: Callable[[str], tuple[Key, str]]) -> None:
    key, _ = keys("rsa-8192")
    v = verifier(require_nonce=True)
    ath = b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest())
    value = proof(key, "PS512", nonce=v.fresh_nonce(), ath=ath)
    assert await v.verify(value, method="POST", url=URL, access_token=ACCESS_TOKEN)


async def test_no_header_is_no_proof() -> None:
    assert await verifier().verify(None, method="POST", url=URL) is None


def test_thumbprint_matches_rfc_7638_example() -> None:
    from bridge.oauth.dpop import _public_key

    rfc_key = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert _public_key(rfc_key)[1] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# --- refusals --------------------------------------------------------------------------

NOW = int(time.time())


def _small_rsa() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    with warnings.catch_warnings():  # joserfc warns about the short key, rightly
        warnings.simplefilter("ignore")
        small = RSAKey.import_key(rsa.generate_private_key(65537, 1024))
        return proof(small, "RS256")


def _with_private_jwk() -> str:
    return proof(header={"jwk": EC.as_dict(private=True)})


def _hs256() -> str:
    oct_key = OctKey.generate_key(256)
    return proof(oct_key, "HS256", header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}})


def _alg_none() -> str:
    return proof(alg="none")


CASES: list[tuple[str, Callable[[], str], str]] = [
    ("not a JWS", lambda: "abc.def", "compact JWS"),
    ("bad base64", lambda: "!!!.e30.AA", "compact JWS"),
    ("not JSON", lambda: f"{b64(b'x')}.{b64(b'y')}.AA", "compact JWS"),
    ("too long", lambda: proof(pad="x" * 9000), "compact JWS"),
    ("typ missing", lambda: proof(header={"typ": None}), "typ"),
    ("typ JWT", lambda: proof(header={"typ": "JWT"}), "typ"),
    ("alg none", _alg_none, "alg"),
    ("alg HS256", _hs256, "alg"),
    ("alg list", lambda: proof(header={"alg": ["ES256"]}), "alg"),
    ("alg vs key", lambda: proof(header={"alg": "RS256"}), "signature"),
    ("crit", lambda: proof(header={"crit": ["x"], "x": 1}), "extensions"),
    ("no jwk", lambda: proof(header={"jwk": None}), "jwk header is missing"),
    ("private jwk", _with_private_jwk, "public key"),
    ("symmetric jwk", lambda: proof(header={"jwk": {"kty": "oct", "k": "AA"}}), "public key"),
    ("kty list", lambda: proof(header={"jwk": {"kty": ["EC"]}}), "RSA, EC or OKP"),
    ("bad point", lambda: proof(header={"jwk": EC.as_dict() | {"y": b64(b"\0" * 32)}}), "valid"),
    ("small RSA", _small_rsa, "2048"),
    ("other key", lambda: proof(signer=ECKey.generate_key("P-256")), "signature"),
    ("bad signature", lambda: proof()[:-4] + "AAAA", "signature"),
    ("no jti", lambda: proof(drop=("jti",)), "jti"),
    ("jti number", lambda: proof(jti=7), "jti"),
    ("htm", lambda: proof(htm="GET"), "htm"),
    ("htm case", lambda: proof(htm="post"), "htm"),
    ("htu path", lambda: proof(htu="https://bridge.example/other"), "htu"),
    ("htu scheme", lambda: proof(htu="http://bridge.example/token"), "htu"),
    ("htu port", lambda: proof(htu="https://bridge.example:8443/token"), "htu"),
    ("htu host", lambda: proof(htu="https://evil.example/token"), "htu"),
    ("htu junk", lambda: proof(htu="https://[bad/token"), "htu"),
    ("no htu", lambda: proof(drop=("htu",)), "htu"),
    ("no iat", lambda: proof(drop=("iat",)), "iat"),
    ("iat string", lambda: proof(iat=str(NOW)), "iat"),
    ("iat old", lambda: proof(iat=int(time.time()) - 120), "iat"),
    ("iat future", lambda: proof(iat=int(time.time()) + 120), "iat"),
    ("iat NaN", lambda: proof(iat=float("nan")), "NaN is not JSON"),
    ("iat huge", lambda: proof(iat=10**400), "iat"),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_refused(make: Callable[[], str], message: str) -> None:
    error = await refused(verifier(), make())
    assert message in (error.description or ""), error.description
    assert error.error == "invalid_dpop_proof"


async def test_algorithm_must_be_configured() -> None:
    v = verifier(algorithms=["RS256"])
    assert "alg" in ((await refused(v, proof())).description or "")
    hs_configured = verifier(algorithms=["ES256", "HS256", "none"])
    assert "alg" in ((await refused(hs_configured, _hs256())).description or "")


async def test_x25519_key_cannot_sign_proofs() -> None:
    x25519 = OKPKey.generate_key("X25519")
    value = proof(header={"jwk": x25519.as_dict(private=False), "alg": "EdDSA"})
    assert "not a signing key" in ((await refused(verifier(), value)).description or "")


async def test_ath() -> None:
    v = verifier()
    ath = b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest())
    assert await v.verify(proof(ath=ath), method="POST", url=URL, access_token=ACCESS_TOKEN)
    for value in (proof(), proof(ath=ath[:-2] + "AA"), proof(ath=7)):
        error = await refused(v, value, access_token=ACCESS_TOKEN)
        assert "ath" in (error.description or "")


@pytest.mark.parametrize(
    "htu",
    [
        "HTTPS://Bridge.EXAMPLE/token",
        "https://bridge.example:443/token",
        "https://bridge.example/token?query=1#fragment",
        "https://bridge.example/%74oken",  # an unreserved character, percent-encoded
    ],
)
async def test_htu_normalisation(htu: str) -> None:
    assert await verifier().verify(proof(htu=htu), method="POST", url=URL)


async def test_htu_percent_encoding_case_and_empty_path() -> None:
    v = verifier()
    url = "https://bridge.example/a%2Fb"
    assert await v.verify(proof(htu="https://bridge.example/a%2fb"), method="POST", url=url)
    root = "https://bridge.example"
    assert await v.verify(proof(htu=root), method="POST", url=root + "/")


async def test_replayed_jti() -> None:
    v = verifier()
    value = proof()
    assert await v.verify(value, method="POST", url=URL)
    assert "already used" in ((await refused(v, value)).description or "")
    # The same jti from another key is another proof (the namespace is the key's thumbprint).
    other = proof(ECKey.generate_key("P-256"), jti=json.loads(_claims(value))["jti"])
    assert await v.verify(other, method="POST", url=URL)


def _claims(value: str) -> bytes:
    part = value.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_failed_proofs_are_not_recorded() -> None:
    replay = MemoryReplay()
    await refused(verifier(replay), proof(htm="GET"))
    assert replay.seen == {}


# --- nonces ----------------------------------------------------------------------------


async def test_nonce_flow() -> None:
    v = verifier(require_nonce=True)
    with pytest.raises(UseDPoPNonce) as caught:
        await v.verify(proof(), method="POST", url=URL)
    nonce = caught.value.headers["DPoP-Nonce"]
    assert caught.value.error == "use_dpop_nonce"
    assert await v.verify(proof(nonce=nonce), method="POST", url=URL)


async def test_nonce_expiry_and_shared_secret() -> None:
    clock = [time.time()]
    secret = b"s" * 32
    first = verifier(require_nonce=True, nonce_secret=secret, clock=lambda: clock[0])
    second = verifier(require_nonce=True, nonce_secret=secret)
    stranger = verifier(require_nonce=True)
    nonce = first.fresh_nonce()
    assert await second.verify(proof(nonce=nonce), method="POST", url=URL)  # replicas agree
    for bad in (nonce[:-1] + ("A" if nonce[-1] != "A" else "B"), "short", 12345):
        with pytest.raises(UseDPoPNonce):
            await first.verify(proof(nonce=bad), method="POST", url=URL)
    with pytest.raises(UseDPoPNonce):
        await stranger.verify(proof(nonce=nonce), method="POST", url=URL)
    clock[0] += 301  # past nonce_lifetime_seconds (300); the proof's iat moves along
    with pytest.raises(UseDPoPNonce) as caught:
        await first.verify(proof(nonce=nonce, iat=int(clock[0])), method="POST", url=URL)
    assert caught.value.headers["DPoP-Nonce"] != nonce


async def test_nonce_is_ignored_when_not_required() -> None:
    assert await verifier().verify(proof(nonce="anything"), method="POST", url=URL)
