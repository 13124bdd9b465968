"""Helpers of the front door tests: the real bridge on a loopback port whose public URL is
that very port (so cookies and `iss` are what a browser sees), a client registry with one
client per front-door case, local accounts, PKCE, and a person's way through sign-in and
consent with a plain HTTP client that keeps cookies like a browser."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bridge.app import create_app
from bridge.front_door.local_accounts import HASHER
from bridge.settings import load_settings
from tests.conftest import POLICIES, REPO, ServerThread
from tests.oauth_fixtures import clients_toml

CALLBACK = "http://127.0.0.1:8765/callback"
OTHER_CALLBACK = "https://app.example.com/cb"
CRM = "https://crm.example.com/customers/"
BANK = "https://bank.example.com/payments"
PASSWORDS = {
    "alice": "demo-alice",
    "manager-1": "demo-manager-1",
    "finance-1": "demo-finance-1",
    "dpo-1": "demo-dpo-1",
}
FRONT = ["authorization_code", "refresh_token"]
TYPES = ["customer_records", "payment_initiation"]

CLIENTS: dict[str, dict[str, Any]] = {
    # The demo's public web client: PKCE, no secret.
    "demo-web": {
        "auth_method": "none",
        "grant_types": [*FRONT, "urn:ietf:params:oauth:grant-type:deferred"],
        "authorization_details_types": TYPES,
        "scopes": ["customer_records:read"],
        "redirect_uris": [CALLBACK, CALLBACK + "?from=app"],
        "refresh_tokens": True,
    },
    # A confidential web application, for PAR with client authentication.
    "web-app": {
        "auth_method": "client_secret_basic",
        "secret": "web-app-secret-for-tests",
        "grant_types": FRONT,
        "authorization_details_types": TYPES,
        "scopes": ["customer_records:read"],
        "redirect_uris": [CALLBACK],
        "refresh_tokens": True,
    },
    # Must push its requests.
    "par-only": {
        "auth_method": "client_secret_basic",
        "secret": "par-only-secret-for-tests",
        "grant_types": FRONT,
        "authorization_details_types": TYPES,
        "redirect_uris": [CALLBACK],
        "require_pushed_authorization_requests": True,
    },
    # Registered, with a redirect URI, but not for the code grant.
    "machine": {
        "auth_method": "client_secret_basic",
        "secret": "machine-secret-for-tests",
        "grant_types": ["client_credentials"],
        "authorization_details_types": TYPES,
        "redirect_uris": [CALLBACK],
    },
    # A resource server: introspects tokens.
    "resource-server": {
        "auth_method": "client_secret_basic",
        "secret": "resource-server-secret-for-tests",
    },
    # Another public client: a code issued to demo-web is not its code.
    "other-web": {
        "auth_method": "none",
        "grant_types": FRONT,
        "authorization_details_types": TYPES,
        "redirect_uris": [OTHER_CALLBACK],
    },
}
SECRETS = {c: spec["secret"] for c, spec in CLIENTS.items() if "secret" in spec}


def read_details(*ids: str, actions: tuple[str, ...] = ("read",)) -> list[dict[str, Any]]:
    return [
        {"type": "customer_records", "actions": list(actions), "locations": [CRM + i for i in ids]}
    ]


def payment(amount: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "payment_initiation",
            "actions": ["initiate"],
            "locations": [BANK],
            "instructedAmount": {"currency": "EUR", "amount": amount},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        }
    ]


def users_toml(passwords: Mapping[str, str]) -> str:
    return "".join(
        f'[users."{name}"]\npassword_hash = "{HASHER.hash(pw)}"\n\n'
        for name, pw in passwords.items()
    )


class _Holder:
    """An ASGI app set after the socket is bound (the config needs the port)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class FrontDoorServer:
    thread: ServerThread
    folder: Path
    issuer: str

    @property
    def url(self) -> str:
        return self.thread.url

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read or change the database from outside (to let time pass for one record)."""
        with contextlib.closing(sqlite3.connect(self.folder / "var" / "bridge.sqlite3")) as db:
            rows = db.execute(query, args).fetchall()
            db.commit()
            return rows

    def introspect(self, token: str) -> dict[str, Any]:
        response = httpx.post(
            self.url + "/introspect",
            data={"token": token},
            auth=("resource-server", SECRETS["resource-server"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def browser(self) -> httpx.Client:
        """A cookie-keeping client that does not follow redirects (tests look at each)."""
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)


@contextlib.contextmanager
def front_door_server(
    tmp_path: Path,
    *,
    extra: str = "",
    clients: Mapping[str, Mapping[str, Any]] = CLIENTS,
    public_url: str | None = None,
) -> Iterator[FrontDoorServer]:
    """The bridge serving the front door; `extra` TOML is appended (e.g. a [front_door]
    section). Several servers on one folder share its database and keys: replicas."""
    holder = _Holder()
    with contextlib.ExitStack() as stack:
        thread = ServerThread(holder)
        (tmp_path / "clients.toml").write_text(clients_toml(clients), encoding="utf-8")
        (tmp_path / "users.toml").write_text(users_toml(PASSWORDS), encoding="utf-8")
        config = tmp_path / "bridge.toml"
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    f'public_url = "{public_url or thread.url}"',
                    "[reload]",
                    "interval_seconds = 0.2",
                    "[stores.default]",
                    f"path = {json.dumps(str(POLICIES / 'default'))}",
                    "[storage]",
                    'path = "var/bridge.sqlite3"',
                    "[oauth]",
                    'clients_file = "clients.toml"',
                    'key_encryption_key_file = "keys/kek"',
                    f"profiles_dir = {json.dumps(str(REPO / 'profiles'))}",
                    extra,
                ]
            ),
            encoding="utf-8",
        )
        holder.app = create_app(load_settings(config))
        stack.enter_context(thread)
        yield FrontDoorServer(thread, tmp_path, public_url or thread.url)


# -- PKCE -------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), computed here by RFC 7636 §4.2's recipe."""
    verifier = b64url(secrets.token_bytes(32))
    return verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def authorization_params(
    challenge: str,
    *,
    client_id: str = "demo-web",
    details: list[dict[str, Any]] | None = None,
    **extra: str,
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-" + secrets.token_hex(4),
        "authorization_details": json.dumps(
            details if details is not None else read_details("cust-0001")
        ),
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


# -- a person's way through the pages -----------------------------------------------------


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field in the page"
    return html.unescape(found.group(1))


def form_action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]*)"', page)
    assert found, "no form in the page"
    return html.unescape(found.group(1))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start(browser: httpx.Client, params: Mapping[str, str]) -> httpx.Response:
    """GET /authorize; answers the redirect to the interaction page (or an error)."""
    return browser.get("/authorize?" + urlencode(params))


def sign_in(
    browser: httpx.Client, interaction: str, username: str = "alice", password: str | None = None
) -> httpx.Response:
    page = browser.get(interaction)
    assert page.status_code == 200, page.text
    return browser.post(
        form_action(page.text),
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "username": username,
            "password": PASSWORDS.get(username, "x") if password is None else password,
        },
    )


def consent(browser: httpx.Client, interaction: str, decision: str = "approve") -> httpx.Response:
    page = browser.get(interaction)
    assert page.status_code == 200 and "Allow" in page.text, page.text
    return browser.post(
        form_action(page.text),
        data={"csrf_token": hidden(page.text, "csrf_token"), "decision": decision},
    )


def code_for(
    server: FrontDoorServer, params: Mapping[str, str], username: str = "alice"
) -> dict[str, str]:
    """The callback's parameters after `username` signs in and allows."""
    with server.browser() as browser:
        started = start(browser, params)
        assert started.status_code == 303, started.text
        interaction = started.headers["location"]
        signed_in = sign_in(browser, interaction, username)
        assert signed_in.status_code == 303, signed_in.text
        answer = consent(browser, interaction)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(params.get("redirect_uri", CALLBACK))
        return query_of(location)


def redeem(
    server: FrontDoorServer,
    code: str,
    verifier: str,
    *,
    client_id: str = "demo-web",
    redirect_uri: str = CALLBACK,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    auth = None
    if client_id in SECRETS:
        auth = (client_id, SECRETS[client_id])
    else:
        form["client_id"] = client_id
    return httpx.post(
        server.url + "/token", data=form, auth=auth, headers=dict(headers or {}), timeout=30
    )


def claims_of(token: str) -> dict[str, Any]:
    """The payload, unverified (verification is the second JOSE library's test)."""
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data
