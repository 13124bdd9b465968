"""Shared helpers for the token endpoint end-to-end tests (tests/test_token_*.py).

`oauth_server()` runs the real bridge (uvicorn on a loopback port, via `tests.conftest.serve`)
with a configuration written under a temporary folder: a client registry with one client per
authentication method, a trusted identity provider whose signing key the tests hold, and the
repository's RAR profiles and demo policies (or a copy a test may change).

The issuer is fixed (`https://bridge.test`) whatever port the server got, so DPoP proofs name
`https://bridge.test/token` as `htu` and client assertions name the issuer as `aud`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bridge.oauth.clients import hash_secret
from bridge.settings import load_settings
from tests.conftest import POLICIES, REPO, ServerThread, free_port, serve, write_config

ISSUER = "https://bridge.test"
TOKEN_URL = ISSUER + "/token"
IDP = "https://idp.test"

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ID_JAG_TYP = "oauth-id-jag+jwt"

# The identity provider the bridge trusts, and one it does not know.
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)
STRANGER_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)
# The key pair of the private_key_jwt client.
CLIENT_KEY = ECKey.generate_key("P-256", parameters={"kid": "key-client-1"}, private=True)

CRM = "https://crm.example.com/customers/"
BANK = "https://bank.example.com/payments"


def read_details(*ids: str, actions: tuple[str, ...] = ("read",)) -> list[dict[str, Any]]:
    """One `customer_records` entry for the records `ids`."""
    return [
        {"type": "customer_records", "actions": list(actions), "locations": [CRM + i for i in ids]}
    ]


def payment(amount: str = "123.50", currency: str = "EUR") -> list[dict[str, Any]]:
    """One `payment_initiation` entry (the demo policy permits EUR up to 1000.00)."""
    return [
        {
            "type": "payment_initiation",
            "actions": ["initiate"],
            "locations": [BANK],
            "instructedAmount": {"currency": currency, "amount": amount},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        }
    ]


def rar(details: list[dict[str, Any]]) -> str:
    return json.dumps(details, separators=(",", ":"))


# -- the client registry ----------------------------------------------------------------

ALL_GRANTS = [
    "client_credentials",
    TOKEN_EXCHANGE,
    JWT_BEARER,
    "refresh_token",
]
BOTH_TYPES = ["customer_records", "payment_initiation"]

# What each client's registration says; secrets are hashed when the file is written.
CLIENTS: dict[str, dict[str, Any]] = {
    # The demo policies let this client read customer records, for itself and for users.
    "demo-agent": {
        "auth_method": "client_secret_basic",
        "secret": "demo-agent-secret-for-tests",
        "grant_types": ALL_GRANTS,
        "authorization_details_types": BOTH_TYPES,
        "scopes": ["customer_records:read"],
        "refresh_tokens": True,
    },
    # Public, DPoP-bound; users may read customer records through it.
    "demo-public": {
        "auth_method": "none",
        "require_dpop": True,
        "grant_types": [TOKEN_EXCHANGE, JWT_BEARER, "refresh_token"],
        "authorization_details_types": BOTH_TYPES,
        "refresh_tokens": True,
    },
    # client_secret_post; only client_credentials, only payments.
    "post-client": {
        "auth_method": "client_secret_post",
        "secret": "post-client-secret-for-tests",
        "grant_types": ["client_credentials"],
        "authorization_details_types": ["payment_initiation"],
    },
    # private_key_jwt with a key pair made by the tests.
    "key-client": {
        "auth_method": "private_key_jwt",
        "jwks": {"keys": [CLIENT_KEY.as_dict(private=False)]},
        "grant_types": ["client_credentials"],
        "authorization_details_types": ["payment_initiation"],
    },
    # A second confidential client with refresh tokens (for "another client's token").
    "other-agent": {
        "auth_method": "client_secret_basic",
        "secret": "other-agent-secret-for-tests",
        "grant_types": ["client_credentials", TOKEN_EXCHANGE, "refresh_token"],
        "authorization_details_types": BOTH_TYPES,
        "refresh_tokens": True,
    },
    # A resource server: authenticates at introspection.
    "resource-server": {
        "auth_method": "client_secret_basic",
        "secret": "resource-server-secret-for-tests",
    },
}


def secret_of(client_id: str) -> str:
    secret: str = CLIENTS[client_id]["secret"]
    return secret


def basic_header(client_id: str, secret: str | None = None) -> dict[str, str]:
    pair = f"{client_id}:{secret if secret is not None else secret_of(client_id)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def client_assertion(
    client_id: str = "key-client", key: ECKey = CLIENT_KEY, **overrides: Any
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
        **overrides,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def client_auth(client_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form members) that authenticate `client_id` with its registered method."""
    method = CLIENTS[client_id]["auth_method"]
    if method == "client_secret_basic":
        return basic_header(client_id), {}
    if method == "client_secret_post":
        return {}, {"client_id": client_id, "client_secret": secret_of(client_id)}
    if method == "private_key_jwt":
        return {}, {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(client_id),
        }
    return {}, {"client_id": client_id}


def _toml(value: Any) -> str:
    """A TOML value: JSON strings, numbers and booleans are TOML too; tables go inline."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def clients_toml(clients: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for client_id, spec in clients.items():
        lines.append(f"[clients.{json.dumps(client_id)}]")
        for name, value in spec.items():
            if name == "secret":
                lines.append(f"secret_hash = {json.dumps(hash_secret(value))}")
            else:
                lines.append(f"{name} = {_toml(value)}")
        lines.append("")
    return "\n".join(lines)


# -- tokens from the identity provider ----------------------------------------------------


def idp_token(
    sub: str = "alice@example.com",
    *,
    key: ECKey = IDP_KEY,
    iss: str = IDP,
    aud: str = ISSUER,
    expires_in: int = 300,
    typ: str = "JWT",
    **claims: Any,
) -> str:
    """A JWT signed by the trusted identity provider (or by `key`, claiming `iss`)."""
    now = int(time.time())
    body = {
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "iat": now - 10 if expires_in > 0 else now - 600,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": typ}, body, key)


def id_jag(client_id: str, sub: str = "alice@example.com", **claims: Any) -> str:
    """An Identity Assertion JWT Authorization Grant issued to `client_id`."""
    return idp_token(sub, typ=ID_JAG_TYP, client_id=client_id, **claims)


def exchange_form(
    details: list[dict[str, Any]] | None = None,
    *,
    subject_token: str | None = None,
    actor_token: str | None = None,
) -> dict[str, str]:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token or idp_token(),
        "subject_token_type": JWT_TOKEN_TYPE,
    }
    if actor_token is not None:
        form["actor_token"] = actor_token
        form["actor_token_type"] = JWT_TOKEN_TYPE
    if details is not None:
        form["authorization_details"] = rar(details)
    return form


# -- DPoP -----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC public key, computed here by the RFC's recipe."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass
class DPoPKey:
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", private=True))

    @property
    def public_jwk(self) -> dict[str, Any]:
        return {k: v for k, v in self.key.as_dict(private=False).items() if k != "kid"}

    @property
    def jkt(self) -> str:
        return jwk_thumbprint(self.public_jwk)

    def proof(
        self,
        *,
        htu: str = TOKEN_URL,
        htm: str = "POST",
        jti: str | None = None,
        nonce: str | None = None,
        iat: int | None = None,
        signer: ECKey | None = None,
    ) -> str:
        """A proof for this key; `signer` signs it instead (a proof that does not verify)."""
        claims: dict[str, Any] = {
            "jti": jti or str(uuid.uuid4()),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time()) if iat is None else iat,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk}
        return jwt.encode(header, claims, signer or self.key)


# -- the server -------------------------------------------------------------------------


@dataclass
class OAuthServer:
    thread: ServerThread
    http: httpx.Client
    config: Path
    policies: Path

    @property
    def url(self) -> str:
        return self.thread.url

    def post(
        self,
        path: str,
        form: Mapping[str, str | list[str]] | None,
        *,
        client: str | None = "demo-agent",
        dpop: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form to `path`, authenticated as `client` with its registered method."""
        all_headers: dict[str, str] = {}
        body: dict[str, str | list[str]] = {}
        if client is not None:
            auth_headers, auth_form = client_auth(client)
            all_headers.update(auth_headers)
            body.update(auth_form)
        body.update(form or {})
        if dpop is not None:
            all_headers["DPoP"] = dpop
        all_headers.update(headers or {})
        return self.http.post(path, data=body, headers=all_headers)

    def token(self, form: Mapping[str, str | list[str]], **kwargs: Any) -> httpx.Response:
        return self.post("/token", form, **kwargs)

    def issued(self, form: Mapping[str, str | list[str]], **kwargs: Any) -> dict[str, Any]:
        """A token response that must succeed."""
        response = self.token(form, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def introspect(self, token: str, client: str = "resource-server") -> dict[str, Any]:
        response = self.post("/introspect", {"token": token}, client=client)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, token: str, client: str, hint: str | None = None) -> None:
        form = {"token": token} | ({"token_type_hint": hint} if hint else {})
        response = self.post("/revoke", form, client=client)
        assert response.status_code == 200, response.text

    def jwks(self) -> dict[str, Any]:
        response = self.http.get("/jwks")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(header, claims) of an access token whose signature a published key verifies."""
        keys = KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys)
        return dict(decoded.header), dict(decoded.claims)

    def evaluate(self, request: dict[str, Any]) -> bool:
        """The embedded store's decision, through its AuthZEN API (to see a reload land)."""
        response = self.http.post("/access/v1/evaluation", json=request)
        assert response.status_code == 200, response.text
        decision: bool = response.json()["decision"]
        return decision

    def wait_for_decision(self, request: dict[str, Any], expected: bool) -> None:
        deadline = time.monotonic() + 10
        while self.evaluate(request) != expected:
            assert time.monotonic() < deadline, "the policy store was not reloaded"
            time.sleep(0.05)


def server_config(
    folder: Path,
    *,
    clients: Mapping[str, Mapping[str, Any]] | None = None,
    policies: Path | None = None,
    extra: str = "",
    storage: str | None = None,
) -> Path:
    """Write the configuration (and client registry) for a test server into `folder`; its
    `[storage]` table is `storage` when given (e.g. a PostgreSQL `url`), else a SQLite file
    in `folder`."""
    clients_file = folder / "clients.toml"
    clients_file.write_text(clients_toml(clients or CLIENTS), encoding="utf-8")
    issuer_jwks = {"keys": [IDP_KEY.as_dict(private=False)]}
    oauth = f"""
[oauth]
issuer = "{ISSUER}"
clients_file = {json.dumps(str(clients_file))}
profiles_dir = {json.dumps(str(REPO / "profiles"))}
key_encryption_key_file = {json.dumps(str(folder / "signing.kek"))}

[[oauth.trusted_issuers]]
issuer = "{IDP}"
jwks = {_toml(issuer_jwks)}

[storage]
{storage if storage is not None else "path = " + json.dumps(str(folder / "bridge.sqlite3"))}
"""
    return write_config(
        folder / "bridge.toml",
        {"default": policies or POLICIES / "default"},
        oauth + extra,
    )


@contextlib.contextmanager
def oauth_server(
    folder: Path,
    *,
    clients: Mapping[str, Mapping[str, Any]] | None = None,
    copy_policies: bool = False,
    extra: str = "",
) -> Iterator[OAuthServer]:
    """A running bridge configured by `server_config`; with `copy_policies`, the demo
    policies are copied into `folder/policies` so a test can change them."""
    policies = POLICIES / "default"
    if copy_policies:
        policies = folder / "policies"
        shutil.copytree(POLICIES / "default", policies)
    config = server_config(folder, clients=clients, policies=policies, extra=extra)
    with (
        serve(load_settings(config)) as thread,
        httpx.Client(base_url=thread.url, timeout=10) as http,
    ):
        yield OAuthServer(thread, http, config, policies)


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    """An OAuth error response: the status, a JSON body with `error`, `no-store`, no token."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("cache-control") == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert "access_token" not in body
    return body
