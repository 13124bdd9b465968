"""`bridge.jose.compact_signing`: what it signs, joserfc verifies, for every signing algorithm
the bridge offers; the header and payload come back as given; a key imported anew under
the same kid signs with the new key."""

from __future__ import annotations

import json

import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError

from bridge.jose.compact_signing import sign_compact
from bridge.jose.signing_keys import SigningKey, generate_key


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "RS256", "PS256"])
def test_joserfc_verifies_what_is_signed(alg: str) -> None:
    key = generate_key(alg)
    signing = SigningKey(key.kid or "k", alg, key)
    header = {"typ": "at+jwt", "alg": alg, "kid": signing.kid}
    payload = json.dumps({"sub": "demo-agent", "n": 1}).encode()
    for _ in range(2):  # the second time from the caches
        token = sign_compact(signing, header, payload)
        parsed = jws.deserialize_compact(token, key, algorithms=[alg])
        assert parsed.headers() == header
        assert parsed.payload == payload


def test_a_new_key_under_the_same_kid_signs_with_the_new_key() -> None:
    first, second = generate_key("ES256"), generate_key("ES256")
    header = {"typ": "at+jwt", "alg": "ES256", "kid": "same"}
    sign_compact(SigningKey("same", "ES256", first), header, b"{}")
    token = sign_compact(SigningKey("same", "ES256", second), header, b"{}")
    assert jws.deserialize_compact(token, second, algorithms=["ES256"]).payload == b"{}"
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(token, first, algorithms=["ES256"])


def test_a_header_naming_another_algorithm_is_left_to_joserfc() -> None:
    key = generate_key("ES256")
    signing = SigningKey("k", "ES256", key)
    with pytest.raises(JoseError):
        sign_compact(signing, {"alg": "ES384", "kid": "k"}, b"{}")
