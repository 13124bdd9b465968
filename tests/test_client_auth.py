"""Client authentication: every method with real secrets and real signed assertions, and every
way it refuses. The only stand-ins are an in-memory replay cache and, for `jwks_uri`, an HTTP
transport that serves a key set."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from bridge.errors import InvalidClient, InvalidRequest, OAuthError
from bridge.oauth.client_auth import FAILED, JWT_BEARER_ASSERTION, ClientAuthenticator
from bridge.oauth.clients import ClientRegistry, ClientSettings, hash_secret
from tests.memory_replay import MemoryReplay

ISSUER = "https://bridge.example"
TOKEN_ENDPOINT = "https://bridge.example/token"
SPECIAL_ID = "agent:1+%/&="
SPECIAL_SECRET = "p@ss:w rd+&=%é"


EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
URI_KEY = ECKey.generate_key("P-256", parameters={"kid": "uri-1"})


def _client(client_id: str, method: str, **extra: Any) -> ClientSettings:
    return ClientSettings.model_validate({"client_id": client_id, "auth_method": method, **extra})


def _jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


REGISTRY = ClientRegistry(
    {
        c.client_id: c
        for c in [
            _client("basic", "client_secret_basic", secret_hash=hash_secret("basic-secret")),
            _client(SPECIAL_ID, "client_secret_basic", secret_hash=hash_secret(SPECIAL_SECRET)),
            _client("post", "client_secret_post", secret_hash=hash_secret("post-secret")),
            _client("signer", "private_key_jwt", jwks=_jwks(EC_KEY, RSA_KEY)),
            _client("remote", "private_key_jwt", jwks_uri="https://keys.example/jwks"),
            _client("public", "none", require_dpop=True, grant_types=["refresh_token"]),
            _client("off", "client_secret_basic", secret_hash=hash_secret("off"), enabled=False),
        ]
    }
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def assertion(
    key: Any = EC_KEY, alg: str = "ES256", drop: tuple[str, ...] = (), **claims: Any
) -> str:
    now = int(time.time())
    body = {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "iat": now,
            "jti": f"jti-{time.monotonic_ns()}"}  # fmt: skip
    body.update(claims)
    for name in drop:
        body.pop(name)
    header = {"alg": alg}
    if key.kid:
        header["kid"] = key.kid
    return jwt.encode(header, body, key, algorithms=[alg])


def jwt_form(token: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER_ASSERTION, "client_assertion": token, **extra}


@pytest.fixture
def auth() -> ClientAuthenticator:
    served = {"keys": [URI_KEY.as_dict(private=False)]}

    def jwks(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=served)

    http = httpx.AsyncClient(transport=httpx.MockTransport(jwks))
    return ClientAuthenticator(REGISTRY, MemoryReplay(), ISSUER, TOKEN_ENDPOINT, http)


async def refused(
    auth: ClientAuthenticator, headers: dict[str, str], form: dict[str, str]
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await auth.authenticate(headers, form)
    return caught.value


# --- success -------------------------------------------------------------------------


async def test_client_secret_basic(auth: ClientAuthenticator) -> None:
    client = await auth.authenticate(basic("basic", "basic-secret"), {"grant_type": "x"})
    assert client.client_id == "basic"
    lower = {"authorization": basic("basic", "basic-secret")["Authorization"]}
    assert (await auth.authenticate(lower, {"client_id": "basic"})).client_id == "basic"


async def test_client_secret_basic_is_form_urlencoded(auth: ClientAuthenticator) -> None:
    client = await auth.authenticate(basic(SPECIAL_ID, SPECIAL_SECRET), {})
    assert client.client_id == SPECIAL_ID
    raw = f"{SPECIAL_ID}:{SPECIAL_SECRET}".encode()  # not urlencoded: '+' and '%' differ
    header = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    error = await refused(auth, header, {})
    assert isinstance(error, InvalidClient) and error.status == 401


async def test_client_secret_post(auth: ClientAuthenticator) -> None:
    form = {"client_id": "post", "client_secret": "post-secret"}
    assert (await auth.authenticate({}, form)).client_id == "post"


@pytest.mark.parametrize(
    ("key", "alg"), [(EC_KEY, "ES256"), (RSA_KEY, "RS256"), (RSA_KEY, "PS256")]
)
async def test_private_key_jwt(auth: ClientAuthenticator, key: Any, alg: str) -> None:
    client = await auth.authenticate({}, jwt_form(assertion(key, alg), client_id="signer"))
    assert client.client_id == "signer"


async def test_private_key_jwt_audience_forms_and_no_kid(auth: ClientAuthenticator) -> None:
    for aud in (TOKEN_ENDPOINT, ["https://other.example", ISSUER]):
        assert await auth.authenticate({}, jwt_form(assertion(aud=aud)))
    no_kid = ECKey.import_key({k: v for k, v in EC_KEY.as_dict(private=True).items() if k != "kid"})
    assert no_kid.kid is None
    assert await auth.authenticate({}, jwt_form(assertion(no_kid)))


async def test_private_key_jwt_from_jwks_uri(auth: ClientAuthenticator) -> None:
    token = assertion(URI_KEY, iss="remote", sub="remote")
    assert (await auth.authenticate({}, jwt_form(token))).client_id == "remote"


async def test_public_client(auth: ClientAuthenticator) -> None:
    assert (await auth.authenticate({}, {"client_id": "public"})).client_id == "public"


# --- refusals ------------------------------------------------------------------------


async def test_same_answer_for_unknown_disabled_wrong_secret_and_wrong_method(
    auth: ClientAuthenticator,
) -> None:
    cases = [
        basic("basic", "wrong"),
        basic("nobody", "basic-secret"),
        basic("off", "off"),
        basic("post", "post-secret"),  # registered for client_secret_post
    ]
    for headers in cases:
        error = await refused(auth, headers, {})
        assert isinstance(error, InvalidClient) and error.description == FAILED
        assert error.status == 401
        assert error.headers == {"WWW-Authenticate": f'Basic realm="{ISSUER}"'}
    forms = [
        {"client_id": "post", "client_secret": "wrong"},
        {"client_id": "nobody", "client_secret": "x"},
        {"client_id": "basic", "client_secret": "basic-secret"},
        {"client_id": "basic"},  # a confidential client without its credential
        {"client_id": "nobody"},
        jwt_form(assertion(iss="basic", sub="basic")),
    ]
    for form in forms:
        error = await refused(auth, {}, form)
        assert isinstance(error, InvalidClient) and error.description == FAILED, form
        assert error.status == 400 and "WWW-Authenticate" not in error.headers


NO_COLON = "Basic " + base64.b64encode(b"nocolon").decode()


@pytest.mark.parametrize("value", ["Basic", "Basic !!!", NO_COLON])
async def test_malformed_basic_header_is_401(auth: ClientAuthenticator, value: str) -> None:
    error = await refused(auth, {"Authorization": value}, {})
    assert isinstance(error, InvalidClient) and error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_other_authorization_schemes_are_not_client_auth(auth: ClientAuthenticator) -> None:
    headers = {"Authorization": "DPoP abc"}
    assert (await auth.authenticate(headers, {"client_id": "public"})).client_id == "public"


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        (basic("basic", "basic-secret"), {"client_secret": "basic-secret"}),
        (basic("basic", "basic-secret"), jwt_form("x.y.z")),
        ({}, jwt_form("x.y.z", client_id="post", client_secret="post-secret")),
        ({}, {"client_assertion_type": JWT_BEARER_ASSERTION, "client_secret": "x"}),
    ],
)
async def test_two_methods_at_once(
    auth: ClientAuthenticator, headers: dict[str, str], form: dict[str, str]
) -> None:
    error = await refused(auth, headers, form)
    assert isinstance(error, InvalidRequest) and "exactly one" in (error.description or "")


async def test_basic_with_another_form_client_id(auth: ClientAuthenticator) -> None:
    error = await refused(auth, basic("basic", "basic-secret"), {"client_id": "post"})
    assert isinstance(error, InvalidRequest)


async def test_post_without_client_id_and_public_without_client_id(
    auth: ClientAuthenticator,
) -> None:
    assert isinstance(await refused(auth, {}, {"client_secret": "x"}), InvalidRequest)
    assert isinstance(await refused(auth, {}, {"grant_type": "x"}), InvalidClient)


def _hs256() -> str:
    now = int(time.time())
    claims = {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "jti": "h"}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.generate_key(256), algorithms=["HS256"])


def _none_alg() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "jti": "n"}
    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: assertion(OTHER_KEY), FAILED),  # same kid, another key: bad signature
        (lambda: assertion(aud="https://elsewhere.example"), "aud"),
        (lambda: assertion(exp=int(time.time()) - 120), "expired"),
        (lambda: assertion(drop=("exp",)), "exp is required"),
        # Infinity and NaN are not JSON: the strict parser refuses the assertion first.
        (lambda: assertion(exp=float("inf")), "Infinity is not JSON"),
        (lambda: assertion(exp=float("nan")), "NaN is not JSON"),
        (lambda: assertion(exp=10**400), "exp is required"),
        (lambda: assertion(drop=("jti",)), "jti is required"),
        (lambda: assertion(nbf=int(time.time()) + 600), "nbf"),
        (lambda: assertion(iat=int(time.time()) + 600), "iat"),
        (lambda: assertion(iss="someone-else"), "iss and sub"),
        (lambda: assertion(drop=("sub",)), "iss and sub"),
        (_hs256, "algorithm"),
        (_none_alg, "algorithm"),
        (lambda: "not-a-jwt", "not a signed JWT"),
        (lambda: assertion() + "x", FAILED),
    ],
)
async def test_assertion_refusals(auth: ClientAuthenticator, make: Any, message: str) -> None:
    error = await refused(auth, {}, jwt_form(make()))
    assert isinstance(error, InvalidClient)
    assert message in (error.description or ""), error.description
    assert "WWW-Authenticate" not in error.headers


async def test_assertion_jti_replay(auth: ClientAuthenticator) -> None:
    token = assertion()
    assert await auth.authenticate({}, jwt_form(token))
    error = await refused(auth, {}, jwt_form(token))
    assert isinstance(error, InvalidClient) and "already used" in (error.description or "")


async def test_assertion_client_id_mismatch(auth: ClientAuthenticator) -> None:
    error = await refused(auth, {}, jwt_form(assertion(), client_id="post"))
    assert isinstance(error, InvalidClient) and "client_id" in (error.description or "")


async def test_assertion_parameters(auth: ClientAuthenticator) -> None:
    wrong_type = {"client_assertion_type": "urn:other", "client_assertion": assertion()}
    assert isinstance(await refused(auth, {}, wrong_type), InvalidRequest)
    missing = {"client_assertion_type": JWT_BEARER_ASSERTION}
    assert isinstance(await refused(auth, {}, missing), InvalidRequest)


async def test_unreachable_jwks_uri(caplog: pytest.LogCaptureFixture) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    auth = ClientAuthenticator(REGISTRY, MemoryReplay(), ISSUER, TOKEN_ENDPOINT, http)
    token = assertion(URI_KEY, iss="remote", sub="remote")
    error = await refused(auth, {}, jwt_form(token))
    assert isinstance(error, InvalidClient) and error.description == FAILED
    assert token not in caplog.text


async def test_secrets_and_assertions_are_never_logged(
    auth: ClientAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = assertion(OTHER_KEY)
    await refused(auth, basic("basic", "wrong-secret-value"), {})
    await refused(auth, {}, jwt_form(token))
    assert "wrong-secret-value" not in caplog.text and token not in caplog.text
