"""The ID token checks on tokens a real provider would not send: signed here with keys served
from a loopback JWKS endpoint, so each check of OpenID Connect Core §3.1.3.7 can be seen to
refuse what it must (and only that: each case changes one thing of a token that passes)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from pydantic import ValidationError

from bridge.jose.compact import b64encode
from bridge.upstream_signin import IdTokenInvalid, KeysUnavailable, UpstreamSignInSettings
from bridge.upstream_signin.id_token import Expected, verify_id_token
from bridge.upstream_signin.provider_http import ProviderHTTP
from bridge.upstream_signin.provider_keys import ProviderKeys
from tests.support.web import LocalWebServer, WebResponse

ISSUER = "https://idp.example"
CLIENT = "bridge"
NONCE = "n-0S6_WzA2Mj"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
ROTATED = ECKey.generate_key("P-256", parameters={"kid": "k2", "use": "sig"})
# The same kid as KEY, another key: what a forger without the private key would try.
IMPOSTOR = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def jwks(*keys: RSAKey | ECKey) -> WebResponse:
    public = KeySet(list(keys)).as_dict(private=False)
    return WebResponse(json.dumps(public), content_type="application/jwk-set+json")


@dataclasses.dataclass
class Checker:
    web: LocalWebServer
    fetcher: ProviderHTTP
    keys: ProviderKeys
    expected: Expected

    async def verify(self, token: str, **changes: Any) -> dict[str, Any]:
        return await verify_id_token(
            token,
            keys=self.keys,
            jwks_uri=f"{self.web.url}/jwks",
            expected=dataclasses.replace(self.expected, **changes),
        )

    async def refusal(self, token: str, **changes: Any) -> IdTokenInvalid:
        with pytest.raises(IdTokenInvalid) as refused:
            await self.verify(token, **changes)
        return refused.value


@pytest.fixture
async def checker() -> AsyncIterator[Checker]:
    with LocalWebServer({"/jwks": lambda _request: jwks(KEY)}) as web:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
            fetcher = ProviderHTTP(http, allow_private=True, timeout_seconds=5, resolver=_loopback)
            yield Checker(
                web,
                fetcher,
                ProviderKeys(fetcher, min_refresh_seconds=0),
                Expected(
                    issuer=ISSUER,
                    client_id=CLIENT,
                    nonce=NONCE,
                    algorithms=frozenset({"RS256", "ES256"}),
                    leeway_seconds=60,
                    max_age_seconds=600,
                    now=time.time(),
                ),
            )


async def _loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@dataclasses.dataclass(frozen=True)
class Offset:
    """A time claim this many seconds from when the token is made (parameters are made when
    the module is collected, which may be long before the test runs)."""

    seconds: int


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    changes = {
        name: now + value.seconds if isinstance(value, Offset) else value
        for name, value in changes.items()
    }
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def signed(
    payload: dict[str, Any] | None = None, key: RSAKey | ECKey = KEY, alg: str = "RS256"
) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, payload or claims(), key)


async def test_a_token_of_the_provider_passes(checker: Checker) -> None:
    verified = await checker.verify(signed(claims(email="alice@example.test")))
    assert verified["sub"] == "alice"
    assert verified["email"] == "alice@example.test"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://other.example"}, "issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": None}, "audience"),
        ({"aud": [CLIENT, "api"]}, "azp"),  # several audiences, no authorized party
        ({"aud": [CLIENT, "api"], "azp": "api"}, "azp"),
        ({"azp": "another-client"}, "azp"),
        ({"exp": Offset(-90)}, "expired"),
        ({"exp": None}, "exp"),
        ({"exp": True}, "exp"),
        ({"iat": Offset(120)}, "iat"),
        ({"iat": Offset(-3600)}, "iat"),
        ({"iat": None}, "iat"),
        ({"nbf": Offset(120)}, "nbf"),
        ({"nonce": "another-sign-in"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": ""}, "subject"),
        ({"sub": 42}, "subject"),
    ],
)
async def test_each_claim_check_refuses(
    checker: Checker, changes: dict[str, Any], reason: str
) -> None:
    refused = await checker.refusal(signed(claims(**changes)))
    assert refused.reason == reason


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": [CLIENT, "api"], "azp": CLIENT},
        {"exp": Offset(-30)},  # within the leeway
        {"iat": Offset(30)},
    ],
)
async def test_what_the_checks_allow(checker: Checker, changes: dict[str, Any]) -> None:
    assert (await checker.verify(signed(claims(**changes))))["sub"] == "alice"


async def test_an_unsigned_token_is_refused(checker: Checker) -> None:
    header = b64encode(json.dumps({"alg": "none"}).encode())
    token = f"{header}.{b64encode(json.dumps(claims()).encode())}."
    assert (await checker.refusal(token)).reason == "algorithm"


async def test_a_token_keyed_with_the_client_secret_is_refused(checker: Checker) -> None:
    # HS256 with the client secret proves only that someone knew the secret.
    key = OctKey.import_key(b"the-client-secret-of-the-bridge!")
    token = jwt.encode({"alg": "HS256"}, claims(), key, algorithms=["HS256"])
    refused = await checker.refusal(token, algorithms=frozenset({"RS256", "HS256"}))
    # Even when configured: HMAC never verifies an ID token here, it finds no such key.
    assert refused.reason in ("algorithm", "signature")
    assert (await checker.refusal(token)).reason == "algorithm"


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["RS256", "HS512"]])
def test_settings_refuse_none_and_hmac(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="not accepted"):
        UpstreamSignInSettings(
            issuer=ISSUER,
            client_id=CLIENT,
            token_endpoint_auth_method="none",
            algorithms=algorithms,
        )


async def test_a_token_signed_by_another_key_is_refused(checker: Checker) -> None:
    assert (await checker.refusal(signed(key=IMPOSTOR))).reason == "signature"


async def test_a_token_whose_claims_were_changed_is_refused(checker: Checker) -> None:
    header, _payload, signature = signed().split(".")
    forged = b64encode(json.dumps(claims(sub="mallory")).encode())
    assert (await checker.refusal(f"{header}.{forged}.{signature}")).reason == "signature"


async def test_duplicate_claims_are_refused_before_any_key_is_used(checker: Checker) -> None:
    # Two `sub` members: JSON parsers disagree on which one counts; the strict parser refuses.
    payload = json.dumps(claims())[:-1] + ', "sub": "mallory"}'
    token = jws.serialize_compact({"alg": "RS256", "kid": "k1"}, payload.encode(), KEY)
    refused = await checker.refusal(token)
    assert refused.reason == "malformed"
    assert "duplicate member 'sub'" in str(refused)


async def test_a_new_key_is_read_when_a_token_names_it(checker: Checker) -> None:
    assert (await checker.verify(signed()))["sub"] == "alice"  # k1 is kept from here
    checker.web.routes["/jwks"] = lambda _request: jwks(KEY, ROTATED)
    token = signed(key=ROTATED, alg="ES256")
    assert (await checker.verify(token))["sub"] == "alice"
    fetches = [r for r in checker.web.requests if r.path == "/jwks"]
    assert len(fetches) == 2


async def test_a_key_the_provider_does_not_publish_is_refused(checker: Checker) -> None:
    refused = await checker.refusal(signed(key=ROTATED, alg="ES256"))
    assert refused.reason == "unknown_key"


async def test_a_token_naming_no_key_passes_only_when_the_provider_has_one(
    checker: Checker,
) -> None:
    token = jwt.encode({"alg": "RS256"}, claims(), KEY)
    assert (await checker.verify(token))["sub"] == "alice"
    # A fresh key cache, now that the provider publishes two keys.
    checker.web.routes["/jwks"] = lambda _request: jwks(KEY, ROTATED)
    checker.keys = ProviderKeys(checker.fetcher, min_refresh_seconds=0)
    refused = await checker.refusal(token)
    assert refused.reason == "unknown_key"
    assert "names no key" in str(refused)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}, "no public signing key"),
        ({"keys": [KEY.as_dict(private=True)]}, "no public signing key"),
        ({"keys": [{**KEY.as_dict(private=False), "use": "enc"}]}, "no public signing key"),
        ({"not": "a key set"}, "does not hold a JWK Set"),
    ],
)
async def test_unusable_key_sets_are_refused(
    checker: Checker, document: dict[str, Any], problem: str
) -> None:
    def respond(_request: object) -> WebResponse:
        return WebResponse(json.dumps(document), content_type="application/json")

    checker.web.routes["/jwks"] = respond
    with pytest.raises(KeysUnavailable, match=problem):
        await checker.verify(signed())
