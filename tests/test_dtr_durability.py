"""Deferred token requests survive a crash: `bridge serve` is killed with SIGKILL while
requests are pending and pings are queued, restarted on the same database and port, and
every pending request still completes and every ping is delivered exactly once.

Both scenarios run on each store backend: a SQLite file, and a PostgreSQL database of the
test server (`tests.support`) that the restarted process finds again by its `storage.url`.

The bridge runs as a real subprocess (`tests.conftest.bridge_process`); the client's
notification endpoint is a listener in this process that records every ping it gets and
answers 500 while told to fail. "Delivered" means answered 2xx: attempts that got a 500
do not count.

The kill is timed by reading the database (a connection of the test's own, reads only):
- with pings queued, it lands while every ping row waits for its retry (not while one is
  being sent: a row claimed by a dying worker is only due again when its 60 s lease ends,
  which would still be correct but slow);
- right after an approval, it lands before the outbox worker ran the follow-up (the worker
  looks every 0.5 s and is not woken by approvals), which the test checks after the kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bridge.demo_approvers import mint
from bridge.settings import Settings, load_settings
from tests.conftest import bridge_process, free_port
from tests.oauth_fixtures import CLIENTS, CRM, basic_header, rar, server_config
from tests.support.postgres import PostgresDatabase, PostgresServer

pytest_plugins = ["tests.support.plugin"]

DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
APPROVER = "manager-1"  # the demo policies let manager-1 approve exports of customer records


# -- the client's notification endpoint ---------------------------------------------------


@dataclass(frozen=True)
class Ping:
    code: str
    authorization: str | None
    status: int  # what the listener answered


class PingListener:
    """Records every POST; answers 500 while `failing`, else 204."""

    def __init__(self) -> None:
        self.failing = False
        self.pings: list[Ping] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with listener._lock:
                    status = 500 if listener.failing else 204
                    listener.pings.append(
                        Ping(str(body.get("deferral_code")), self.headers["Authorization"], status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/cb"

    def delivered(self) -> dict[str, int]:
        """Successful deliveries per deferral code."""
        counts: dict[str, int] = {}
        with self._lock:
            for ping in self.pings:
                if 200 <= ping.status < 300:
                    counts[ping.code] = counts.get(ping.code, 0) + 1
        return counts

    def attempted(self) -> set[str]:
        with self._lock:
            return {ping.code for ping in self.pings}

    def __enter__(self) -> PingListener:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the bridge under test ----------------------------------------------------------------


Rows = Callable[..., list[tuple[Any, ...]]]  # (query with ? marks, *args): every row


@dataclass
class Database:
    """Where the bridge under test keeps its state: its `[storage]` table, and how the test
    reads it from outside."""

    storage: str | None  # None: a SQLite file in the test's folder
    postgres: PostgresDatabase | None = None

    def rows(self, folder: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.postgres is not None:
            with psycopg.connect(self.postgres.url, autocommit=True) as conn:
                return conn.execute(query.replace("?", "%s"), args).fetchall()
        db = sqlite3.connect(folder / "bridge.sqlite3", timeout=10)
        try:
            return db.execute(query, args).fetchall()
        finally:
            db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database(None)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    fresh = server.create_database("durability")
    try:
        yield Database(f"url = {json.dumps(fresh.url)}", fresh)
    finally:
        server.drop_database(fresh.database)


@dataclass
class Bridge:
    folder: Path
    config: Path
    settings: Settings
    port: int
    database: Database

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[subprocess.Popen[bytes]]:
        """`bridge serve` on the fixed port; its log goes to `<name>.log`."""
        config = self.folder / f"{name}.toml"
        shutil.copyfile(self.config, config)
        with bridge_process(config, self.port) as proc:
            yield proc

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the database beside the running (or killed) server."""
        return self.database.rows(self.folder, query, *args)


def make_bridge(
    folder: Path, endpoint: str, database: Database, *, lease_seconds: float = 60.0
) -> Bridge:
    client = {
        **CLIENTS["demo-agent"],
        "grant_types": ["client_credentials", DEFERRED],
        "refresh_tokens": False,
        "notification_endpoint": endpoint,
    }
    extra = f"""
[server]
log_level = "info"
access_log = false

[access_requests]
allow_private_callbacks = true
demo_approver_key_file = {json.dumps(str(folder / "approver-key.json"))}

[deferral]
interval_seconds = 1
ping_delay_seconds = 0
"""
    # A row taken up by a killed process is due again once its lease has passed.
    storage = database.storage or "path = " + json.dumps(str(folder / "bridge.sqlite3"))
    config = server_config(
        folder,
        clients={"demo-agent": client},
        extra=extra,
        storage=f"{storage}\noutbox_lease_seconds = {lease_seconds}",
    )
    settings = load_settings(config)
    return Bridge(folder, config, settings, free_port(), database)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def wait_for(what: str, condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- the OAuth client and the approver ----------------------------------------------------


def defer(http: httpx.Client, record: str) -> tuple[str, str]:
    """A deferred export of one customer record: (deferral code, notification token)."""
    token = secrets.token_urlsafe(32)
    details = [{"type": "customer_records", "actions": ["export"], "locations": [CRM + record]}]
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "authorization_details": rar(details),
            "completion_mode": "deferred",
            "client_notification_token": token,
        },
        headers=basic_header("demo-agent"),
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "authorization_pending", body
    return str(body["deferral_code"]), token


def poll(http: httpx.Client, code: str) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": DEFERRED, "deferral_code": code},
        headers=basic_header("demo-agent"),
    )


def pending_tasks(http: httpx.Client, approver: str) -> list[str]:
    """The approver's inbox, oldest first."""
    response = http.get("/access/v1/approvals", headers={"Authorization": f"Bearer {approver}"})
    assert response.status_code == 200, response.text
    return [str(task["id"]) for task in response.json()["access_requests"]]


def approve(http: httpx.Client, approver: str, task_id: str) -> None:
    response = http.post(
        f"/access/v1/approvals/{task_id}",
        json={"decision": "approve"},
        headers={"Authorization": f"Bearer {approver}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_request"]["status"] == "approved"


def assert_completes(http: httpx.Client, codes: list[str]) -> None:
    """Each code yields its token once; a second poll finds it redeemed."""
    for code in codes:
        response = poll(http, code)
        assert response.status_code == 200, response.text
        assert response.json()["access_token"]
        again = poll(http, code)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


def statuses(bridge: Bridge, table: str) -> list[str]:
    return sorted(status for (status,) in bridge.rows(f"SELECT status FROM {table}"))


# What these tests follow in the outbox: follow-ups and pings, not the approvers' notices
# (`approval_needed`, one per request, delivered by their own part).
NOT_NOTICES = "kind != 'approval_needed'"


def follow_up_statuses(bridge: Bridge) -> list[str]:
    rows = bridge.rows(f"SELECT status FROM outbox WHERE {NOT_NOTICES}")
    return sorted(status for (status,) in rows)


# -- the tests ----------------------------------------------------------------------------


def test_sigkill_with_pings_queued_and_requests_pending(tmp_path: Path, database: Database) -> None:
    with PingListener() as listener:
        bridge = make_bridge(tmp_path, listener.url, database)
        approver = mint(bridge.settings, APPROVER, 10)
        listener.failing = True
        with (
            bridge.run("first") as proc,
            httpx.Client(base_url=bridge.url, timeout=10) as http,
        ):
            issued = [defer(http, f"cust-{n:04d}") for n in range(6)]
            codes = [code for code, _ in issued]
            tasks = pending_tasks(http, approver)
            assert len(tasks) == 6
            # Four are approved (their pings now fail and wait for a retry); two stay pending.
            for task_id in tasks[:4]:
                approve(http, approver, task_id)

            def pings_waiting_for_retry() -> bool:
                now = time.time()
                rows = bridge.rows(
                    "SELECT status, attempts, next_attempt_at FROM outbox "
                    "WHERE kind = 'deferral_ping'"
                )
                return len(rows) == 4 and all(
                    status == "pending" and attempts >= 1 and 0.3 < due - now < 30
                    for status, attempts, due in rows
                )

            wait_for("every ping to have failed once", pings_waiting_for_retry)
            kill(proc)

        # What the crash left behind: four approved deferrals whose pings are queued (none
        # delivered), two deferrals still pending.
        assert statuses(bridge, "deferrals") == ["pending"] * 2 + ["resolved_ok"] * 4
        assert listener.delivered() == {}
        assert len(listener.attempted()) == 4
        assert bridge.rows(
            f"SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND {NOT_NOTICES}"
        ) == [(4,)]

        listener.failing = False
        with (
            bridge.run("restarted"),
            httpx.Client(base_url=bridge.url, timeout=10) as http,
        ):
            rest = pending_tasks(http, approver)
            assert len(rest) == 2 and set(rest) == set(tasks[4:])
            for task_id in rest:
                approve(http, approver, task_id)
            wait_for("a ping for every deferral", lambda: set(listener.delivered()) == set(codes))
            wait_for(
                "the outbox to drain",
                lambda: follow_up_statuses(bridge) == ["done"] * 12,  # 6 follow-ups, 6 pings
            )
            time.sleep(0.5)  # a duplicate would have been sent by now; none may come
            assert listener.delivered() == dict.fromkeys(codes, 1)
            tokens = {code: token for code, token in issued}
            for ping in listener.pings:
                assert ping.authorization == f"Bearer {tokens[ping.code]}"
            assert_completes(http, codes)


def test_sigkill_right_after_an_approval(tmp_path: Path, database: Database) -> None:
    with PingListener() as listener:
        # The follow-up may be taken up just before the kill: its lease must end within the
        # test's wait.
        bridge = make_bridge(tmp_path, listener.url, database, lease_seconds=2)
        approver = mint(bridge.settings, APPROVER, 10)
        with (
            bridge.run("first") as proc,
            httpx.Client(base_url=bridge.url, timeout=10) as http,
        ):
            code, token = defer(http, "cust-0001")
            assert poll(http, code).json()["error"] == "authorization_pending"
            (task_id,) = pending_tasks(http, approver)
            approve(http, approver, task_id)
            kill(proc)

        # The approval is stored with its follow-up, which had not finished (the worker may
        # have taken it up, one attempt, when the process died): the deferral is still
        # pending and no ping was queued.
        assert bridge.rows("SELECT status FROM access_requests") == [("approved",)]
        [(kind, status, attempts)] = bridge.rows(
            f"SELECT kind, status, attempts FROM outbox WHERE {NOT_NOTICES}"
        )
        assert (kind, status) == ("task_terminal", "pending") and attempts in (0, 1)
        assert statuses(bridge, "deferrals") == ["pending"]

        with (
            bridge.run("restarted"),
            httpx.Client(base_url=bridge.url, timeout=10) as http,
        ):
            wait_for("the ping", lambda: listener.delivered() == {code: 1})
            assert listener.pings == [Ping(code, f"Bearer {token}", 204)]
            assert_completes(http, [code])
