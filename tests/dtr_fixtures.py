"""Helpers for the deferred-approval end-to-end tests (tests/test_dtr_*.py).

The real bridge (uvicorn on a loopback port through `tests.oauth_fixtures`, real SQLite,
real Cedar with the demo policies) with what deferred approvals need on top:

- the token test clients, each also allowed the deferred grant, plus `ping-agent`, whose
  `notification_endpoint` is a listener the test runs (`PingListener`);
- the demo approver issuer (`access_requests.demo_approver_key_file`), so tests mint
  approver tokens for `manager-1` and `finance-1` with `bridge.demo_approvers.mint`;
- helpers for the DTR exchange itself: the deferred response (checked), polls, the
  approver API.

`code_lifetime` shortens deferral codes below the 60 s the configuration file accepts:
the settings read from the file are copied with a shorter `deferral.code_lifetime_seconds`
(the product's own code, only the number differs), so expiry is testable in seconds.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import queue
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bridge.demo_approvers import mint
from bridge.settings import Settings, load_settings
from tests.conftest import serve
from tests.oauth_fixtures import (
    CLIENTS,
    CRM,
    TOKEN_URL,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    basic_header,
    client_auth,
    payment,
    server_config,
)

DEFERRED_GRANT = "urn:ietf:params:oauth:grant-type:deferred"
DEFERRAL_CODE_TYPE = "urn:ietf:params:oauth:token-type:deferral-code"
REVOKE_URL = TOKEN_URL.rsplit("/", 1)[0] + "/revoke"
PROBLEM = "application/problem+json"
ARAP_ERROR = "urn:openid:authzen:access-request:error:"
APPROVALS = "/access/v1/approvals"
REQUESTS = "/access/v1/requests"

PING_AGENT = "ping-agent"
PING_AGENT_SECRET = "ping-agent-secret-for-tests"
PING_PATH = "/dtr/callback"


def with_deferred_grant(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec, "grant_types": [*spec.get("grant_types", []), DEFERRED_GRANT]}


def dtr_clients(ping_endpoint: str | None = None) -> dict[str, dict[str, Any]]:
    """The token tests' registry, every client allowed to poll; with `ping_endpoint`, also
    `ping-agent` (client_secret_basic, token exchange) notified there."""
    clients = {cid: with_deferred_grant(spec) for cid, spec in CLIENTS.items()}
    if ping_endpoint is not None:
        clients[PING_AGENT] = with_deferred_grant(
            {
                "auth_method": "client_secret_basic",
                "secret": PING_AGENT_SECRET,
                "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                "authorization_details_types": ["customer_records", "payment_initiation"],
                "notification_endpoint": ping_endpoint,
            }
        )
    return clients


def auth_for(client_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form members) authenticating `client_id` (the token tests' or ping-agent)."""
    if client_id == PING_AGENT:
        return basic_header(PING_AGENT, PING_AGENT_SECRET), {}
    return client_auth(client_id)


# -- what is requested ------------------------------------------------------------------


def unique_record() -> str:
    """A customer record id no other test uses, to find this test's access request."""
    return "c-" + uuid.uuid4().hex[:12]


def export_details(record: str) -> list[dict[str, Any]]:
    """Exporting one customer record: the demo policies want a manager's approval."""
    return [{"type": "customer_records", "actions": ["export"], "locations": [CRM + record]}]


def payment_details(amount: str, creditor: str = "Merchant A") -> list[dict[str, Any]]:
    """One EUR payment; 1,000.01 to 100,000.00 needs finance, above is refused outright."""
    entry = payment(amount)[0]
    entry["creditorName"] = creditor
    return [entry]


def unique_amount() -> tuple[str, int]:
    """A EUR amount between 1,000.01 and 100,000.00 (finance approves) no other test uses:
    (the `amount` string, the amount in cents the PDP sees)."""
    cents = 200_000 + uuid.uuid4().int % 9_000_000
    return f"{cents // 100}.{cents % 100:02d}", cents


def is_about(resource: Mapping[str, Any], what: str | int) -> bool:
    if isinstance(what, int):
        return bool(resource.get("properties", {}).get("amount_minor") == what)
    return bool(resource.get("id") == what)


def rfc3339(epoch: float) -> str:
    return (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).isoformat().replace("+00:00", "Z")
    )


def parse_rfc3339(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def notification_token() -> str:
    """A client_notification_token as DTR asks clients to make one (256 CSPRNG bits)."""
    return secrets.token_urlsafe(32)


# -- the ping listener ------------------------------------------------------------------


@dataclass
class Delivery:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class PingListener:
    """A client's notification endpoint: an HTTP server on a loopback port that records
    every request and answers from a script of statuses (then `default`)."""

    def __init__(self, default: int = 204) -> None:
        self.default = default
        self._script: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with listener._lock:
                    listener.deliveries.append(
                        Delivery(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                try:
                    status = listener._script.get_nowait()
                except queue.Empty:
                    status = listener.default
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = _answer
            do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{PING_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, *script: int) -> None:
        """Forget what arrived; answer the next requests with `script`, then `default`."""
        with self._lock:
            self.deliveries.clear()
            while not self._script.empty():
                self._script.get_nowait()
        for status in script:
            self._script.put(status)

    def for_code(self, code: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if code.encode() in d.body]

    def wait_for(self, code: str, count: int, timeout: float = 10.0) -> list[Delivery]:
        """The deliveries that name `code`, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while len(found := self.for_code(code)) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} pings arrived"
            time.sleep(0.05)
        return found


# -- the server -------------------------------------------------------------------------


@dataclass
class Deferral:
    """A deferred response's members."""

    code: str
    expires_in: int
    interval: int


@dataclass
class DTRServer:
    oauth: OAuthServer
    settings: Settings
    folder: Path

    @property
    def http(self) -> httpx.Client:
        return self.oauth.http

    @property
    def database(self) -> Path:
        return self.settings.resolve(self.settings.storage.path)

    # -- the token endpoint -----------------------------------------------------------

    def post(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        client: str | None = "demo-agent",
        dpop: str | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        body: dict[str, str] = {}
        if client is not None:
            auth_headers, auth_form = auth_for(client)
            headers.update(auth_headers)
            body.update(auth_form)
        body.update(form)
        if dpop is not None:
            headers["DPoP"] = dpop
        return self.http.post(path, data=body, headers=headers)

    def token(self, form: Mapping[str, str], **kwargs: Any) -> httpx.Response:
        return self.post("/token", form, **kwargs)

    def defer(self, form: Mapping[str, str], **kwargs: Any) -> Deferral:
        """An opted-in token request that must be deferred; checks the deferred response."""
        response = self.token({**form, "completion_mode": "deferred"}, **kwargs)
        body = assert_deferred(response)
        return Deferral(body["deferral_code"], body["expires_in"], body["interval"])

    def poll(
        self, code: str, *, client: str = "demo-agent", key: DPoPKey | None = None
    ) -> httpx.Response:
        form = {"grant_type": DEFERRED_GRANT, "deferral_code": code}
        return self.token(form, client=client, dpop=key.proof() if key else None)

    def poll_until_settled(
        self,
        deferral: Deferral,
        *,
        client: str = "demo-agent",
        key: DPoPKey | None = None,
        timeout: float = 15.0,
    ) -> httpx.Response:
        """Poll as a well-behaved client until the answer is neither `authorization_pending`
        nor `slow_down`: wait the interval before each poll (the caller may just have
        polled), and add 5 s to it on every `slow_down`."""
        deadline = time.monotonic() + timeout
        interval = deferral.interval
        while True:
            assert time.monotonic() + interval < deadline, "the deferral was never settled"
            time.sleep(interval)
            response = self.poll(deferral.code, client=client, key=key)
            error = response.json().get("error") if response.status_code == 400 else None
            if error not in ("authorization_pending", "slow_down"):
                return response
            assert response.headers.get("cache-control") == "no-store"
            assert "deferral_code" not in response.json()
            if error == "slow_down":
                interval += 5

    def revoke_code(
        self, code: str, *, client: str = "demo-agent", key: DPoPKey | None = None
    ) -> httpx.Response:
        form = {"token": code, "token_type_hint": DEFERRAL_CODE_TYPE}
        return self.post(
            "/revoke", form, client=client, dpop=key.proof(htu=REVOKE_URL) if key else None
        )

    # -- approvers --------------------------------------------------------------------

    def approver_token(self, sub: str) -> str:
        return mint(self.settings, sub, 10)

    def approver_headers(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.approver_token(sub)}"}

    def inbox(self, sub: str) -> list[dict[str, Any]]:
        response = self.http.get(APPROVALS, headers=self.approver_headers(sub))
        assert response.status_code == 200, response.text
        requests: list[dict[str, Any]] = response.json()["access_requests"]
        return requests

    def requests_about(self, sub: str, what: str | int) -> list[dict[str, Any]]:
        """The access requests in `sub`'s inbox with an item about `what`: a customer
        record id, or a payment's amount in minor units."""
        return [
            request
            for request in self.inbox(sub)
            if any(is_about(item["resource"], what) for item in request["items"])
        ]

    def find_request(self, sub: str, what: str | int) -> dict[str, Any]:
        """The one access request in `sub`'s inbox about `what` (see `requests_about`)."""
        found = self.requests_about(sub, what)
        assert len(found) == 1, f"{len(found)} requests about {what} for {sub}"
        return found[0]

    def view(self, sub: str, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"{APPROVALS}/{task_id}", headers=self.approver_headers(sub))
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()["access_request"]
        return view

    def decide(self, sub: str, task_id: str, decision: str, **members: Any) -> httpx.Response:
        return self.http.post(
            f"{APPROVALS}/{task_id}",
            json={"decision": decision, **members},
            headers=self.approver_headers(sub),
        )

    def approve(self, sub: str, task_id: str, **members: Any) -> dict[str, Any]:
        response = self.decide(sub, task_id, "approve", **members)
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()["access_request"]
        return view


# -- the database, read from outside -------------------------------------------------------


def database_values(path: Path) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) of every cell of every table of the SQLite file at `path`,
    read through a second, read-only connection (it sees what the bridge committed)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    yield table, column, value


def database_files(path: Path) -> dict[str, bytes]:
    """The bytes of the SQLite file and of its write-ahead log and journal, if present."""
    found = {}
    for suffix in ("", "-wal", "-journal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            found[candidate.name] = candidate.read_bytes()
    return found


def task_ids_about(path: Path, record: str) -> list[str]:
    """The ids of the stored access requests with an item about the customer record
    `record` (for requests that no approver's inbox lists)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT id, items FROM access_requests").fetchall()
    return [str(task_id) for task_id, items in rows if record in str(items)]


def assert_deferred(response: httpx.Response) -> dict[str, Any]:
    """DTR §6.4: 400 `authorization_pending` with a code, its lifetime and the interval."""
    body = assert_oauth_error(response, "authorization_pending")
    code = body.get("deferral_code")
    assert isinstance(code, str) and len(code) >= 43, body
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, body
    assert isinstance(body.get("interval"), int) and body["interval"] >= 1, body
    assert "interaction_uri" not in body
    return body


def assert_problem(response: httpx.Response, status: int, type_: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def dtr_config_text(
    folder: Path,
    *,
    deferral: Mapping[str, Any] | None = None,
    allow_private_callbacks: bool = False,
) -> str:
    """The `[access_requests]` and `[deferral]` sections for a test server."""
    lines = [
        "",
        "[access_requests]",
        f"demo_approver_key_file = {json.dumps(str(folder / 'approvers.key'))}",
        f"allow_private_callbacks = {json.dumps(allow_private_callbacks)}",
        # Some tests file access requests over HTTP themselves, as an unauthenticated PEP.
        "allow_anonymous_requesters = true",
        "",
        "[deferral]",
    ]
    lines += [f"{name} = {json.dumps(value)}" for name, value in (deferral or {}).items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def dtr_server(
    folder: Path,
    *,
    deferral: Mapping[str, Any] | None = None,
    ping_endpoint: str | None = None,
    code_lifetime: float | None = None,
) -> Iterator[DTRServer]:
    """A running bridge for deferred approvals, configured under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = dtr_config_text(
        folder, deferral=deferral, allow_private_callbacks=ping_endpoint is not None
    )
    config = server_config(folder, clients=dtr_clients(ping_endpoint), extra=extra)
    settings = load_settings(config)
    if code_lifetime is not None:
        shorter = settings.deferral.model_copy(update={"code_lifetime_seconds": code_lifetime})
        settings = settings.model_copy(update={"deferral": shorter})
    with (
        serve(settings) as thread,
        httpx.Client(base_url=thread.url, timeout=10) as http,
    ):
        oauth = OAuthServer(thread, http, config, settings.store_path("default"))
        yield DTRServer(oauth, settings, folder)
