"""PEP authentication per store: API keys and bearer JWTs checked against an inline JWKS.

The bridge is served for real (uvicorn on loopback) with `[stores.<name>.auth]` settings:
- `default`: two API keys, and JWTs from ISSUER for AUDIENCE signed by KEY;
- `tenant`: an API key in a custom header, and JWTs whose audience defaults to the store's
  PDP URL;
- `open`: no authentication at all.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.conftest import POLICIES, ServerThread, serve, settings_for

ISSUER = "https://issuer.example.com"
AUDIENCE = "https://pdp.example.com/bridge"
PUBLIC_URL = "https://pdp.test/bridge"  # server.public_url: the realm and the default audience
TENANT_AUDIENCE = f"{PUBLIC_URL}/stores/tenant"
KEYS = ["key-one-8f3b2c", "key-two-71d0aa"]
TENANT_KEY = "tenant-key-5e9a1f"

KEY = ECKey.generate_key("P-256", parameters={"kid": "signing-1"})
ROTATED = ECKey.generate_key("P-256", parameters={"kid": "signing-2"})
STRANGER = ECKey.generate_key("P-256", parameters={"kid": "signing-1"})  # same kid, other key
STRANGER_OWN_KID = ECKey.generate_key("P-256", parameters={"kid": "stranger"})

REQUEST = {
    "subject": {"type": "client", "id": "demo-agent"},
    "action": {"name": "read"},
    "resource": {"type": "CustomerRecord", "id": "cust-0001"},
}
BODIES = {
    "evaluation": REQUEST,
    "evaluations": {**REQUEST, "evaluations": [{}, {"action": {"name": "export"}}]},
    "search/subject": {**REQUEST, "subject": {"type": "client"}},
    "search/resource": {**REQUEST, "resource": {"type": "CustomerRecord"}},
    "search/action": {k: v for k, v in REQUEST.items() if k != "action"},
}
EXPECTED = {
    "evaluation": {"decision": True},
    "evaluations": {"evaluations": [{"decision": True}, {"decision": False}]},
    "search/subject": {"results": [{"type": "client", "id": "demo-agent"}]},
    # Every stored record the demo agent may read (cust-0042 is the sensitive one).
    "search/resource": {
        "results": [
            {"type": "CustomerRecord", "id": "cust-0001"},
            {"type": "CustomerRecord", "id": "cust-0042"},
        ]
    },
    "search/action": {"results": [{"name": "read"}]},
}
ENDPOINTS = list(BODIES)


def toml_value(value: Any) -> str:
    """A JSON-like value as TOML (inline tables for objects)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def jwks(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    extra = "\n".join(
        [
            "[server]",
            f"public_url = {toml_value(PUBLIC_URL)}",
            "",
            "[stores.default.auth]",
            f"api_keys = {toml_value(KEYS)}",
            f"jwt_issuer = {toml_value(ISSUER)}",
            f"jwt_audience = {toml_value(AUDIENCE)}",
            f"jwks = {toml_value(jwks(KEY, ROTATED))}",
            "",
            "[stores.tenant.auth]",
            f"api_keys = {toml_value([TENANT_KEY])}",
            'api_key_header = "X-API-Key"',
            f"jwt_issuer = {toml_value(ISSUER)}",
            f"jwks = {toml_value(jwks(KEY))}",
            "",
        ]
    )
    folder = POLICIES / "default"
    stores = {"default": folder, "tenant": folder, "open": folder}
    with serve(settings_for(tmp_path_factory.mktemp("pep"), stores, extra)) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def token(
    key: ECKey = KEY,
    *,
    iss: str | None = ISSUER,
    aud: Any = AUDIENCE,
    exp: float | None = 300,
    kid: str | None = "use-key",
    extra: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "pep-1", "iat": now}
    if iss is not None:
        claims["iss"] = iss
    if aud is not None:
        claims["aud"] = aud
    if exp is not None:
        claims["exp"] = now + int(exp)
    claims.update(extra or {})
    header: dict[str, Any] = {"alg": "ES256"}
    if kid == "use-key":
        header["kid"] = key.kid
    elif kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, key)


def call(
    http: httpx.Client, authorization: str | None, endpoint: str = "evaluation", store: str = ""
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    prefix = f"/stores/{store}" if store else ""
    return http.post(f"{prefix}/access/v1/{endpoint}", json=BODIES[endpoint], headers=headers)


def assert_accepted(response: httpx.Response, endpoint: str = "evaluation") -> None:
    assert response.status_code == 200, response.text
    assert response.json() == EXPECTED[endpoint]


def assert_refused(response: httpx.Response, realm: str = PUBLIC_URL) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm="), challenge
    assert challenge.startswith(f'Bearer realm="{realm}"'), challenge
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == 401
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# -- missing and wrong credentials ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_credential_is_401(http: httpx.Client, endpoint: str) -> None:
    assert_refused(call(http, None, endpoint))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "wrong-key",
        "Bearer wrong-key",
        KEYS[0].upper(),
        KEYS[0][:-1],
        KEYS[0] + "x",
        f"Basic {KEYS[0]}",
        f"Token {KEYS[0]}",
        TENANT_KEY,
        "a.b.c",
        "Bearer not.a.jwt",
    ],
)
def test_wrong_credential_is_401(http: httpx.Client, authorization: str) -> None:
    assert_refused(call(http, authorization))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_key_is_401_on_every_endpoint(http: httpx.Client, endpoint: str) -> None:
    response = call(http, "Bearer wrong-key", endpoint)
    assert_refused(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_authentication_comes_before_reading_the_body(http: httpx.Client) -> None:
    for content, content_type in [(b"{bad", "application/json"), (b"{}", "text/plain")]:
        response = http.post(
            "/access/v1/evaluation", content=content, headers={"content-type": content_type}
        )
        assert_refused(response)


# -- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("form", ["{k}", "Bearer {k}", "bearer {k}", "BEARER  {k}"])
def test_api_key_accepted_raw_and_as_bearer(http: httpx.Client, key: str, form: str) -> None:
    assert_accepted(call(http, form.format(k=key)))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_api_key_accepted_on_every_endpoint(http: httpx.Client, endpoint: str) -> None:
    assert_accepted(call(http, KEYS[0], endpoint), endpoint)
    assert_accepted(call(http, f"Bearer {KEYS[1]}", endpoint), endpoint)


def test_api_key_in_a_configured_header(http: httpx.Client) -> None:
    path = "/stores/tenant/access/v1/evaluation"
    for value in (TENANT_KEY, f"Bearer {TENANT_KEY}"):
        assert_accepted(http.post(path, json=REQUEST, headers={"x-api-key": value}))
    refused = http.post(path, json=REQUEST, headers={"X-API-Key": "nope"})
    assert_refused(refused, realm=TENANT_AUDIENCE)
    assert_refused(http.post(path, json=REQUEST), realm=TENANT_AUDIENCE)


def test_keys_belong_to_their_store(http: httpx.Client) -> None:
    path = "/stores/tenant/access/v1/evaluation"
    response = http.post(path, json=REQUEST, headers={"x-api-key": KEYS[0]})
    assert_refused(response, realm=TENANT_AUDIENCE)
    assert_refused(call(http, TENANT_KEY))


def test_store_without_auth_settings_needs_no_credential(http: httpx.Client) -> None:
    assert_accepted(call(http, None, store="open"))
    assert_accepted(call(http, "Bearer anything", store="open"))


def test_metadata_and_health_need_no_credential(http: httpx.Client) -> None:
    document = http.get("/.well-known/authzen-configuration")
    assert document.status_code == 200
    assert document.json()["policy_decision_point"] == PUBLIC_URL
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


# -- JWTs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_valid_jwt_accepted(http: httpx.Client, endpoint: str) -> None:
    assert_accepted(call(http, f"Bearer {token()}", endpoint), endpoint)


def test_jwt_signed_by_any_key_of_the_jwks_accepted(http: httpx.Client) -> None:
    assert_accepted(call(http, f"Bearer {token(ROTATED)}"))


def test_jwt_without_kid_accepted_by_a_single_key_jwks(http: httpx.Client) -> None:
    # `kid` is optional in a JWS; the tenant's JWKS holds one key, so there is no doubt.
    path = "/stores/tenant/access/v1/evaluation"
    headers = {"Authorization": f"Bearer {token(kid=None, aud=TENANT_AUDIENCE)}"}
    assert_accepted(http.post(path, json=REQUEST, headers=headers))


def test_jwt_with_audience_list_accepted(http: httpx.Client) -> None:
    assert_accepted(call(http, f"Bearer {token(aud=['https://other.example', AUDIENCE])}"))


REFUSED_TOKENS = {
    "wrong-audience": lambda: token(aud="https://other.example.com"),
    "pdp-url-audience": lambda: token(aud=PUBLIC_URL),
    "no-audience": lambda: token(aud=None),
    "expired": lambda: token(exp=-3600),
    "no-exp": lambda: token(exp=None),
    "wrong-issuer": lambda: token(iss="https://evil.example.com"),
    "no-issuer": lambda: token(iss=None),
    "other-key-same-kid": lambda: token(STRANGER),
    "other-key-own-kid": lambda: token(STRANGER_OWN_KID),
    "other-key-no-kid": lambda: token(STRANGER, kid=None),
    "unknown-kid": lambda: token(kid="nope"),
    "not-yet-valid": lambda: token(extra={"nbf": int(time.time()) + 3600}),
}


@pytest.mark.parametrize("make", list(REFUSED_TOKENS.values()), ids=list(REFUSED_TOKENS))
def test_bad_jwt_is_401(http: httpx.Client, make: Any) -> None:
    response = call(http, f"Bearer {make()}")
    assert_refused(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_unsigned_or_tampered_jwt_is_401(http: httpx.Client) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    unsigned = f"{_b64({'alg': 'none'})}.{_b64(claims)}."
    header, _, signature = token().split(".")
    forged = f"{header}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"
    good = token()
    truncated = good[:-3]
    for bad in (unsigned, forged, truncated):
        assert_refused(call(http, f"Bearer {bad}"))


def test_jwt_audience_defaults_to_the_store_pdp_url(http: httpx.Client) -> None:
    path = "/stores/tenant/access/v1/evaluation"
    good = {"Authorization": f"Bearer {token(aud=TENANT_AUDIENCE)}"}
    assert_accepted(http.post(path, json=REQUEST, headers=good))
    for aud in (AUDIENCE, PUBLIC_URL):
        bad = {"Authorization": f"Bearer {token(aud=aud)}"}
        assert_refused(http.post(path, json=REQUEST, headers=bad), realm=TENANT_AUDIENCE)
    # A key the tenant's JWKS does not hold.
    rotated = {"Authorization": f"Bearer {token(ROTATED, aud=TENANT_AUDIENCE)}"}
    assert_refused(http.post(path, json=REQUEST, headers=rotated), realm=TENANT_AUDIENCE)
