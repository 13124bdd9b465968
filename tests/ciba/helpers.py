"""Helpers of the CIBA tests (this module holds no tests).

The real bridge of the approval pages' tests (front door with the demo's local accounts,
the demo policies, the demo approver issuer, polls every second), with CIBA clients on top:

- `ciba-agent`: confidential (client_secret_basic), the CIBA grant in `poll` mode (and the
  deferred grant);
- `ciba-ping-agent`: the same in `ping` mode, notified at a `PingListener` the test runs;
- the token tests' clients (`demo-public` is public: it may not use the endpoint).

A client's side of CIBA (`CibaServer.ask`, `poll`, `poll_until_settled`) and the user's side
(`her_page`: the page of her request found in her list, signed in with a cookie-keeping HTTP
client; `answer`: its form posted). What is asked are payments (`tests.dtr_fixtures`): up to
1,000.00 EUR policy permits, above finance must approve, above 100,000.00 nobody can.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridge.app import create_app
from bridge.settings import load_settings
from tests.approvals.helpers import signed_in
from tests.conftest import POLICIES, ServerThread
from tests.dtr_fixtures import DTRServer, dtr_clients, dtr_config_text
from tests.front_door.helpers import PASSWORDS, hidden, users_toml
from tests.oauth_fixtures import (
    ISSUER,
    DPoPKey,
    OAuthServer,
    basic_header,
    client_auth,
    rar,
    server_config,
)

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
DEFERRED_GRANT = "urn:ietf:params:oauth:grant-type:deferred"
BACKCHANNEL_PATH = "/bc-authorize"
BACKCHANNEL_URL = ISSUER + BACKCHANNEL_PATH
REQUESTS_PATH = "/ciba/requests"

AGENT = "ciba-agent"
PING_AGENT = "ciba-ping-agent"
SECRETS = {AGENT: "ciba-agent-secret-for-tests", PING_AGENT: "ciba-ping-agent-secret-for-tests"}


def ciba_clients(ping_endpoint: str | None = None) -> dict[str, dict[str, Any]]:
    clients = dtr_clients()
    clients[AGENT] = {
        "auth_method": "client_secret_basic",
        "secret": SECRETS[AGENT],
        # The deferred grant too: to show that it does not redeem an auth_req_id.
        "grant_types": [CIBA_GRANT, DEFERRED_GRANT],
        "authorization_details_types": ["payment_initiation", "customer_records"],
        "scopes": ["customer_records:read"],
    }
    if ping_endpoint is not None:
        clients[PING_AGENT] = {
            "auth_method": "client_secret_basic",
            "secret": SECRETS[PING_AGENT],
            "grant_types": [CIBA_GRANT],
            "authorization_details_types": ["payment_initiation"],
            "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": ping_endpoint,
        }
    return clients


def auth_headers(client: str) -> dict[str, str]:
    """HTTP Basic for a CIBA client, or the token tests' headers for one of theirs."""
    if client in SECRETS:
        return basic_header(client, SECRETS[client])
    return client_auth(client)[0]


class _Holder:
    """An ASGI app set after the socket is bound (the configuration needs the port)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Acknowledgement:
    auth_req_id: str
    expires_in: int
    interval: int


@dataclass
class CibaServer:
    dtr: DTRServer

    @property
    def http(self) -> httpx.Client:
        return self.dtr.http

    @property
    def url(self) -> str:
        return self.dtr.oauth.url

    # -- the client ---------------------------------------------------------------------

    def ask(
        self,
        who: str | None,
        details: list[dict[str, Any]] | None,
        *,
        client: str | None = AGENT,
        scope: str | None = "openid",
        key: DPoPKey | None = None,
        headers: Mapping[str, str] | None = None,
        **params: str,
    ) -> httpx.Response:
        """POST /bc-authorize as `client` (None: no client authentication)."""
        form: dict[str, str] = dict(params)
        if who is not None:
            form["login_hint"] = who
        if scope is not None:
            form["scope"] = scope
        if details is not None:
            form["authorization_details"] = rar(details)
        sent: dict[str, str] = {}
        if client in SECRETS:
            sent.update(auth_headers(client))
        elif client is not None:
            headers_, members = client_auth(client)  # the token tests' clients
            sent.update(headers_)
            form.update(members)
        if key is not None:
            sent["DPoP"] = key.proof(htu=BACKCHANNEL_URL)
        sent.update(headers or {})
        return self.http.post(BACKCHANNEL_PATH, data=form, headers=sent)

    def asked(self, who: str, details: list[dict[str, Any]], **kwargs: Any) -> Acknowledgement:
        """A backchannel request that must be acknowledged (CIBA Core §7.3)."""
        response = self.ask(who, details, **kwargs)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"auth_req_id", "expires_in", "interval"}, body
        # §7.3: at least 128 bits, only A-Z a-z 0-9 . - _
        assert re.fullmatch(r"[A-Za-z0-9._-]{22,}", body["auth_req_id"]), body
        return Acknowledgement(body["auth_req_id"], body["expires_in"], body["interval"])

    def poll(
        self, auth_req_id: str, *, client: str = AGENT, key: DPoPKey | None = None
    ) -> httpx.Response:
        sent = dict(auth_headers(client))
        if key is not None:
            sent["DPoP"] = key.proof()
        form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
        return self.http.post("/token", data=form, headers=sent)

    def poll_until_settled(
        self,
        ack: Acknowledgement,
        *,
        client: str = AGENT,
        key: DPoPKey | None = None,
        timeout: float = 20.0,
    ) -> httpx.Response:
        """Poll as a well-behaved client until the answer is neither `authorization_pending`
        nor `slow_down`: the interval before each poll, 5 s more after a `slow_down`."""
        deadline = time.monotonic() + timeout
        interval = ack.interval
        while True:
            assert time.monotonic() + interval < deadline, "the request was never settled"
            time.sleep(interval)
            response = self.poll(ack.auth_req_id, client=client, key=key)
            error = response.json().get("error") if response.status_code == 400 else None
            if error not in ("authorization_pending", "slow_down"):
                return response
            if error == "slow_down":
                interval += 5

    # -- the user -----------------------------------------------------------------------

    @contextlib.contextmanager
    def signed_in(self, who: str) -> Iterator[httpx.Client]:
        with signed_in(self.dtr, who, REQUESTS_PATH) as browser:
            yield browser

    def outbox_done(self, kind: str, payload: bytes, timeout: float = 15.0) -> None:
        """Wait until the outbox row `kind` with `payload`, queued already, was delivered (a
        delivered row keeps no payload; a given-up one keeps it)."""
        uri = f"file:{self.dtr.database}?mode=ro"
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                (left,) = db.execute(
                    "SELECT COUNT(*) FROM outbox WHERE kind = ? AND payload = ?", (kind, payload)
                ).fetchone()
            if left == 0:
                return
            assert time.monotonic() < deadline, f"{kind} was never delivered"
            time.sleep(0.05)


def her_page(browser: httpx.Client, words: str) -> tuple[str, str]:
    """(path, HTML) of her request whose entry in her list says `words`."""
    listing = browser.get(REQUESTS_PATH)
    assert listing.status_code == 200, listing.text
    entries = re.findall(r"<li>(.*?)</li>", listing.text, re.S)
    links = [
        re.search(r'href="([^"]+)"', entry).group(1)  # type: ignore[union-attr]
        for entry in entries
        if words in html.unescape(entry)
    ]
    assert len(links) == 1, listing.text
    page = browser.get(links[0])
    assert page.status_code == 200, page.text
    return links[0], page.text


def answer(browser: httpx.Client, path: str, decision: str, **fields: str) -> httpx.Response:
    page = browser.get(path)
    form = {"csrf_token": hidden(page.text, "csrf_token"), "decision": decision, **fields}
    return browser.post(path + "/decision", data=form)


def approve_as_alice(server: CibaServer, words: str) -> str:
    """Alice signs in, finds the request that says `words`, approves; its page's path."""
    with server.signed_in("alice") as browser:
        path, _ = her_page(browser, words)
        done = answer(browser, path, "approve")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == path + "?done=approve"
    return path


def message() -> str:
    """A binding message no other test uses, to find this test's request."""
    return "Order " + secrets.token_hex(4).upper()


@contextlib.contextmanager
def ciba_server(
    folder: Path,
    *,
    ping_endpoint: str | None = None,
    extra: str = "",
    ciba: Mapping[str, Any] | None = None,
    policies: Path = POLICIES / "default",
) -> Iterator[CibaServer]:
    """The bridge for CIBA: its public URL is its own port (what a browser sees)."""
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users.toml"
    users.write_text(users_toml(PASSWORDS), encoding="utf-8")
    holder = _Holder()
    with contextlib.ExitStack() as stack:
        thread = ServerThread(holder)
        front = (
            f"\n[server]\npublic_url = {json.dumps(thread.url)}\n"
            f"\n[front_door]\nusers_file = {json.dumps(str(users))}\n"
        )
        if ciba:
            front += "\n[ciba]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in ciba.items())
        config = server_config(
            folder,
            clients=ciba_clients(ping_endpoint),
            policies=policies,
            extra=dtr_config_text(
                folder,
                deferral={"interval_seconds": 1},
                allow_private_callbacks=ping_endpoint is not None,
            )
            + front
            + extra,
        )
        settings = load_settings(config)
        holder.app = create_app(settings)
        stack.enter_context(thread)
        http = stack.enter_context(httpx.Client(base_url=thread.url, timeout=10))
        oauth = OAuthServer(thread, http, config, settings.store_path("default"))
        yield CibaServer(DTRServer(oauth, settings, folder))


def request_id(server: CibaServer, binding_message: str) -> bytes:
    """The id of the CIBA request made with `binding_message`, as its outbox rows carry it."""
    uri = f"file:{server.dtr.database}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        (found,) = db.execute(
            "SELECT id FROM ciba_requests WHERE binding_message = ?", (binding_message,)
        ).fetchone()
    return str(found).encode()
