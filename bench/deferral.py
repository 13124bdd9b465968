"""Deferral benchmark: the cost of polling a pending deferral code and the delay from an
approval to the client's ping, with 1,000 and with 100,000 pending deferrals in the store,
side by side in one run, on the SQLite store (`--backend sqlite`, the default) or the
PostgreSQL store (`--backend postgres`: a private PostgreSQL server started for the run,
one database per size; see `bench/databases.py` for its settings).

Setup, once per size: a bridge database (a file in a temporary folder, or a database of
the PostgreSQL server) gets one real deferral through
`POST /token` (a `client_credentials` export of a customer record by `demo-agent`, which the
demo policies defer until manager-1 approves; the client has a notification endpoint and
sends a `client_notification_token`). Its `deferrals` and `access_requests` rows are then
cloned in bulk (one SQL transaction; COPY on PostgreSQL, then ANALYZE) up to the wanted
number: each clone with its own
random code (the keyed lookup hash, the sealed code and notification token made with the
bridge's own keys), its own access request, its own customer record and creation time, in
tables and indexes created by the bridge's own schema.

1. Poll of a pending code (answer `authorization_pending`), timed one request at a time, the
   two sizes alternating poll by poll. Up to 1,000 filler codes per size are polled once per
   pass; between passes their throttle state is cleared, so no poll is a `slow_down`:
   - in process: `DeferralService.poll` on the bridge's store (lookup by code hash, the
     throttle bookkeeping transaction), no server running;
   - over HTTP: `POST /token` with the deferred grant and `client_secret_basic` against
     `bridge serve` on that database (one keep-alive connection).
2. Approval-to-ping: a new deferred request at `POST /token`, then the clock starts,
   `POST /access/v1/approvals/{id}` by manager-1, and the clock stops when the listener in
   this process receives the ping. The database gives the split: approval stored → deferral
   resolved (the outbox worker picking up the follow-up, re-evaluating, queueing the ping) →
   ping received. `deferral.ping_delay_seconds` is 0 here (default 0.5 s, on purpose). Each
   approval starts at a random moment (0 to 0.5 s after the previous ping) so that the
   samples do not fall into step with the outbox worker's tick.
3. One housekeeping pass, in process, with nothing due: the store's part of every chore
   (deferral expiry and purge, access request expiry and purge, the remote access request
   sweep and purge, the outbox purge), as the app runs them every 5 s (the purges once a
   minute).

The two sizes alternate sample by sample (and the two servers run at the same time), so
drift hits both alike. Figures: median and p99 per size, and the 100k/1k ratio (target ≤ 2).

Usage: python -m bench.deferral [--backend sqlite|postgres] [--sizes 1000 100000]
       [--polls 1000] [--passes 3] [--pings 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.databases import BACKENDS, Database, database
from bench.databases import server as database_server
from bench.harness import REPO, free_port, server
from bridge.access_requests.lifecycle import PURGE_AFTER_SECONDS
from bridge.deferral.codes import DeferralKeys, new_code
from bridge.deferral.service import DeferralService
from bridge.demo_approvers import mint
from bridge.errors import OAuthError
from bridge.jose.sealing import load_key_encryption_key
from bridge.oauth.clients import Client, hash_secret
from bridge.settings import Settings, load_settings
from bridge.store.backends import store_for
from bridge.store.postgres import deferrals as pg_deferrals
from bridge.store.postgres import tasks as pg_tasks
from bridge.store.sqlite import deferrals as sqlite_deferrals
from bridge.store.sqlite import tasks as sqlite_tasks
from tests.support.postgres import PostgresServer

CLIENT_ID, CLIENT_SECRET = "demo-agent", "demo-agent-secret-for-bench"
DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
CRM = "https://crm.example.com/customers/"
TEMPLATE_RECORD = "cust-0001"
LIFETIME = 10_800  # the deferrals' (and access requests') life, as the defaults have it


# -- the client's notification endpoint ---------------------------------------------------


class Listener:
    """Answers every ping 204 and notes when it arrived (wall clock and perf counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, float]] = {}
        self._changed = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stamp = (time.time(), time.perf_counter())
                length = int(self.headers.get("Content-Length") or 0)
                code = str(json.loads(self.rfile.read(length))["deferral_code"])
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with listener._changed:
                    listener.arrived[code] = stamp
                    listener._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/cb"

    def wait(self, code: str, timeout: float = 10.0) -> tuple[float, float]:
        with self._changed:
            if not self._changed.wait_for(lambda: code in self.arrived, timeout):
                raise RuntimeError("no ping arrived")
            return self.arrived[code]

    @contextmanager
    def running(self) -> Iterator[Listener]:
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


# -- one database of a given size ---------------------------------------------------------


@dataclass
class Site:
    pending: int
    folder: Path
    config: Path
    settings: Settings
    port: int
    db: Database
    codes: list[str] = field(default_factory=list)  # filler codes, for polls (shuffled)

    @property
    def kek(self) -> bytes:
        return load_key_encryption_key(
            self.settings.resolve(self.settings.oauth.key_encryption_key_file)
        )

    @property
    def keys(self) -> DeferralKeys:
        return DeferralKeys(self.kek)

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            *("-m", "bridge.cli", "serve", "--config", str(self.config)),
            *("--port", str(self.port)),
        ]


def make_site(
    workdir: Path, pending: int, listener: Listener, kind: str, postgres: PostgresServer | None
) -> Site:
    folder = workdir / f"pending-{pending}"
    folder.mkdir()
    db = database(kind, folder, f"pending_{pending}", postgres)
    clients = folder / "clients.toml"
    clients.write_text(
        f'[clients."{CLIENT_ID}"]\n'
        'auth_method = "client_secret_basic"\n'
        f'secret_hash = "{hash_secret(CLIENT_SECRET)}"\n'
        f'grant_types = ["client_credentials", "{DEFERRED}"]\n'
        'authorization_details_types = ["customer_records"]\n'
        f'notification_endpoint = "{listener.url}"\n'
    )
    port = free_port()
    config = folder / "bridge.toml"
    config.write_text(
        f'[server]\npublic_url = "http://127.0.0.1:{port}"\n'
        'log_level = "warning"\naccess_log = false\n\n'
        "[reload]\nenabled = false\n\n"
        f"[storage]\n{db.storage}\n\n"
        "[oauth]\n"
        f'clients_file = "{clients}"\n'
        f'profiles_dir = "{REPO / "profiles"}"\n'
        f'key_encryption_key_file = "{folder / "bridge.kek"}"\n\n'
        "[access_requests]\nallow_private_callbacks = true\n"
        f'demo_approver_key_file = "{folder / "approver-key.json"}"\n\n'
        "[deferral]\nping_delay_seconds = 0\n\n"
        f'[stores.default]\npath = "{REPO / "policies" / "default"}"\n'
    )
    return Site(pending, folder, config, load_settings(config), port, db)


def basic() -> httpx.BasicAuth:
    return httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)


def defer(http: httpx.Client, record: str = TEMPLATE_RECORD) -> str:
    details = [{"type": "customer_records", "actions": ["export"], "locations": [CRM + record]}]
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "authorization_details": json.dumps(details),
            "completion_mode": "deferred",
            "client_notification_token": secrets.token_urlsafe(32),
        },
        auth=basic(),
    )
    body = response.json()
    if response.status_code != 400 or body.get("error") != "authorization_pending":
        raise RuntimeError(f"not deferred: {response.status_code} {response.text}")
    return str(body["deferral_code"])


def fill(site: Site) -> float:
    """One real deferral through the token endpoint, cloned up to `site.pending` rows.
    Returns the seconds the bulk insert took."""
    with server(site.command, site.port) as url, httpx.Client(base_url=url, timeout=10) as http:
        defer(http)
    keys = site.keys
    db = site.db
    deferral = db.first_row("deferrals")
    task = db.first_row("access_requests")
    # The spent `jti` of the binding token the submission echoed (one per request).
    binding = db.first_row("access_request_bindings")
    for table in ("access_request_idempotency", "access_request_approvals", "outbox"):
        # Internal submissions leave nothing else behind that a clone would need.
        if db.rows(f"SELECT COUNT(*) FROM {table}")[0][0]:
            raise RuntimeError(f"unexpected rows in {table}")
    deferral.pop("id")
    started = time.perf_counter()
    now = time.time()
    deferrals, tasks, bindings = [], [], []
    for n in range(1, site.pending):
        record = f"cust-{n:06d}"
        code = new_code()
        code_hash = keys.code_hash(code)
        task_id = "arq_" + secrets.token_urlsafe(24)
        created = now - random.uniform(60, 3600)
        site.codes.append(code)
        deferrals.append(
            {
                **deferral,
                "code_hash": code_hash,
                "snapshot_json": deferral["snapshot_json"].replace(TEMPLATE_RECORD, record),
                "task_id": task_id,
                # Each clone is another request: no shared dedupe key (none is needed to
                # measure polls and pings).
                "dedupe_key": None,
                "created_at": created,
                "expires_at": created + LIFETIME,
                "code_sealed": keys.seal_code(code_hash, code),
                "notification_token_sealed": keys.seal_notification_token(
                    code_hash, secrets.token_urlsafe(32)
                ),
            }
        )
        bindings.append({**binding, "jti": secrets.token_urlsafe(16), "task_id": task_id})
        tasks.append(
            {
                **{
                    k: v.replace(TEMPLATE_RECORD, record) if isinstance(v, str) else v
                    for k, v in task.items()
                },
                "id": task_id,
                "created_at": created,
                "updated_at": created,
                "expires_at": created + LIFETIME,
                "retain_until": created + LIFETIME,
            }
        )
    db.insert(
        {"deferrals": deferrals, "access_requests": tasks, "access_request_bindings": bindings}
    )
    elapsed = time.perf_counter() - started
    counted = db.rows("SELECT COUNT(*) FROM deferrals WHERE status = 'pending'")
    assert counted[0][0] == site.pending, counted
    random.shuffle(site.codes)
    return elapsed


# -- measurements -------------------------------------------------------------------------


def ms(seconds: list[float]) -> list[float]:
    return [s * 1000 for s in seconds]


async def poll_in_process(sites: list[Site], polls: int, passes: int) -> dict[int, list[float]]:
    """`DeferralService.poll` of `polls` pending codes per size, the sizes alternating poll by
    poll; `passes` times, the codes' throttle state cleared in between."""
    client = Client(
        client_id=CLIENT_ID, auth_method="client_secret_basic", secret_hash=hash_secret("x")
    )
    samples: dict[int, list[float]] = {site.pending: [] for site in sites}
    stores = [store_for(site.settings) for site in sites]
    for store in stores:
        await store.open()
    try:
        services = [
            DeferralService(store, site.kek, site.settings.deferral)
            for site, store in zip(sites, stores, strict=True)
        ]
        for _ in range(passes):
            for n in range(polls):
                for site, service in zip(sites, services, strict=True):
                    started = time.perf_counter()
                    try:
                        await service.poll(client, site.codes[n], None)
                    except OAuthError as error:
                        elapsed = time.perf_counter() - started
                        if error.error != "authorization_pending":
                            raise
                    else:
                        raise RuntimeError("a pending code was answered with a token")
                    samples[site.pending].append(elapsed)
            for site in sites:
                forget_polls(site)
    finally:
        for store in stores:
            await store.close()
    return samples


def forget_polls(site: Site) -> None:
    """Clear the throttle bookkeeping of the polled codes, so that the next poll of each is
    its first again (`authorization_pending`, not `slow_down`)."""
    site.db.rows(
        "UPDATE deferrals SET last_poll_at = NULL, slow_down_count = 0, "
        "required_gap = interval WHERE status = 'pending'"
    )


def poll_http(
    sites: list[Site], urls: dict[int, str], polls: int, passes: int
) -> dict[int, list[float]]:
    """`POST /token` polls over one keep-alive connection per server, as above."""
    samples: dict[int, list[float]] = {site.pending: [] for site in sites}
    clients = {
        site.pending: httpx.Client(base_url=urls[site.pending], timeout=10, auth=basic())
        for site in sites
    }
    try:
        for http in clients.values():  # connect and warm up (not timed)
            http.post("/token", data={"grant_type": DEFERRED, "deferral_code": "x" * 43})
        for _ in range(passes):
            for n in range(polls):
                for site in sites:
                    started = time.perf_counter()
                    response = clients[site.pending].post(
                        "/token", data={"grant_type": DEFERRED, "deferral_code": site.codes[n]}
                    )
                    elapsed = time.perf_counter() - started
                    if response.json().get("error") != "authorization_pending":
                        raise RuntimeError(f"unexpected answer: {response.text}")
                    samples[site.pending].append(elapsed)
            for site in sites:
                forget_polls(site)
    finally:
        for http in clients.values():
            http.close()
    return samples


async def housekeeping(sites: list[Site], rounds: int) -> dict[int, list[float]]:
    """One housekeeping pass, nothing being due: what every chore asks of the store
    (`DeferralService.expire_due`; the access requests' `expire_due` and `sweep`; the remote
    access requests' `refresh_due`; the outbox purge), in the order the app runs them."""
    samples: dict[int, list[float]] = {site.pending: [] for site in sites}
    stores = [store_for(site.settings) for site in sites]
    for store in stores:
        await store.open()
    try:
        for _ in range(rounds):
            for site, store in zip(sites, stores, strict=True):
                now = time.time()
                started = time.perf_counter()
                await store.deferrals_expire(now, limit=1000, purge_before=now - 86_400)
                await store.tasks_past_expiry(now, 100)
                await store.tasks_purge(now, PURGE_AFTER_SECONDS)
                await store.remote_tasks_claim_due(now, 100, 30.0)
                await store.remote_tasks_purge(now - 86_400)
                await store.outbox_purge(now - 86_400)
                samples[site.pending].append(time.perf_counter() - started)
    finally:
        for store in stores:
            await store.close()
    return samples


@dataclass
class PingSample:
    total: float  # approval sent → ping received
    approval: float  # the approval's HTTP round trip
    to_resolution: float  # approval stored → deferral resolved and ping queued
    to_ping: float  # ping queued → ping received


def approval_to_ping(
    sites: list[Site], urls: dict[int, str], listener: Listener, count: int
) -> dict[int, list[PingSample]]:
    samples: dict[int, list[PingSample]] = {site.pending: [] for site in sites}
    with ExitStack() as stack:
        clients = {
            site.pending: stack.enter_context(httpx.Client(base_url=urls[site.pending], timeout=10))
            for site in sites
        }
        approvers = {
            site.pending: {"Authorization": f"Bearer {mint(site.settings, 'manager-1', 60)}"}
            for site in sites
        }
        keys = {site.pending: site.keys for site in sites}
        for n in range(count):
            for site in sites:
                http, db = clients[site.pending], site.db
                code = defer(http, f"new-{n:06d}")
                ((task_id,),) = db.rows(
                    "SELECT task_id FROM deferrals WHERE code_hash = ?",
                    (keys[site.pending].code_hash(code),),
                )
                # The outbox worker looks every 0.5 s: start at a random phase of its tick,
                # else the loop falls into step with it and every sample waits alike.
                time.sleep(random.uniform(0, 0.5))
                started = time.perf_counter()
                response = http.post(
                    f"/access/v1/approvals/{task_id}",
                    json={"decision": "approve"},
                    headers=approvers[site.pending],
                )
                answered = time.perf_counter()
                if response.status_code != 200:
                    raise RuntimeError(f"approval failed: {response.text}")
                wall, arrived = listener.wait(code)
                # The decision's time, and the resolution's (the ping is queued with it).
                ((stored,),) = db.rows(
                    "SELECT updated_at FROM access_requests WHERE id = ?", (task_id,)
                )
                ((queued,),) = db.rows(
                    "SELECT resolved_at FROM deferrals WHERE task_id = ?", (task_id,)
                )
                samples[site.pending].append(
                    PingSample(
                        arrived - started, answered - started, queued - stored, wall - queued
                    )
                )
    return samples


# -- report -------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def row(name: str, small: list[float], large: list[float], unit: str = "ms") -> None:
    a, b = statistics.median(small), statistics.median(large)
    c, d = p99(small), p99(large)
    print(f"  {name:<38} median {a:8.2f} {b:8.2f} {unit}  x{b / a:5.2f}")
    print(f"  {'':<38} p99    {c:8.2f} {d:8.2f} {unit}  x{d / c:5.2f}")


def client_cost() -> float:
    """Median milliseconds to make (and close) the HTTP client a ping is sent with: it loads
    the CA bundle into a new TLS context each time."""

    async def one() -> float:
        started = time.perf_counter()
        client = httpx.AsyncClient(verify=True, trust_env=False)
        elapsed = time.perf_counter() - started
        await client.aclose()
        return elapsed * 1000

    return statistics.median(asyncio.run(one()) for _ in range(9))


def query_plans(site: Site) -> None:
    """The statements the housekeeping runs every 5 s, as the database plans them (with
    every row of the larger size in place)."""
    statements: dict[str, tuple[str, tuple[Any, ...]]]
    if site.db.url is not None:
        statements = {
            "deferrals due": (pg_deferrals.SELECT_DUE, (["pending", "resolved_ok"], 0, 1000)),
            "access requests purge": (pg_tasks.DELETE_DECIDED, (0,)),
            "access requests due": (pg_tasks.SELECT_PAST_EXPIRY, (0, 100)),
        }
    else:
        statements = {
            "deferrals due": (sqlite_deferrals.SELECT_DUE, ("pending", "resolved_ok", 0, 1000)),
            "access requests purge": (sqlite_tasks.DELETE_DECIDED, (0,)),
            "access requests due": (sqlite_tasks.SELECT_PAST_EXPIRY, (0, 100)),
        }
    for name, (statement, args) in statements.items():
        print(f"  {name}: {site.db.plan(statement, args)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000, 100_000])
    parser.add_argument(
        "--polls", type=int, default=1_000, help="codes per size and pass (at most size - 1)"
    )
    parser.add_argument("--pings", type=int, default=120, help="approvals per size")
    parser.add_argument("--passes", type=int, default=3, help="over the polled codes")
    args = parser.parse_args()
    began = time.monotonic()
    listener = Listener()
    print(f"store backend: {args.backend}")
    with (
        listener.running(),
        tempfile.TemporaryDirectory(prefix="bench-deferral-") as tmp,
        database_server(args.backend) as postgres,
    ):
        workdir = Path(tmp)
        sites = [make_site(workdir, size, listener, args.backend, postgres) for size in args.sizes]
        for site in sites:
            elapsed = fill(site)
            size_mb = site.db.size_mb()
            print(
                f"filled {site.pending:,} pending deferrals (+ as many access requests) in "
                f"{elapsed:.1f} s; database {size_mb:.0f} MB"
            )
        small, large = (site.pending for site in sites)
        polls = min(args.polls, *(len(site.codes) for site in sites))
        polled = asyncio.run(poll_in_process(sites, polls, args.passes))
        swept = asyncio.run(housekeeping(sites, 20))
        with ExitStack() as stack:
            urls = {
                site.pending: stack.enter_context(server(site.command, site.port)) for site in sites
            }
            time.sleep(1)  # let both servers settle (first housekeeping pass, signing keys)
            over_http = poll_http(sites, urls, polls, args.passes)
            pings = approval_to_ping(sites, urls, listener, args.pings)
        print()
        print(f"pending deferrals in the store: {small:,} vs {large:,} (ratio {large}/{small})")
        print(f"  {'':<38} {'':6} {small:>8,} {large:>8,}      ratio")
        row("poll, in process (DeferralService.poll)", ms(polled[small]), ms(polled[large]))
        row("poll, HTTP POST /token", ms(over_http[small]), ms(over_http[large]))
        row("housekeeping pass (every 5 s)", ms(swept[small]), ms(swept[large]))
        parts: dict[str, tuple[list[float], list[float]]] = {}
        for name in ("total", "approval", "to_resolution", "to_ping"):
            parts[name] = (
                ms([getattr(s, name) for s in pings[small]]),
                ms([getattr(s, name) for s in pings[large]]),
            )
        row("approval-to-ping", *parts["total"])
        row("  the approval's HTTP round trip", *parts["approval"])
        row("  approval stored -> ping queued", *parts["to_resolution"])
        row("  ping queued -> ping received", *parts["to_ping"])
        fastest = min(parts["to_resolution"][0] + parts["to_resolution"][1])
        print(
            f"  fastest approval stored -> ping queued (no wait for the worker): {fastest:.1f} ms"
        )
        print(f"  for reference, one httpx.AsyncClient(verify=True): {client_cost():.1f} ms")
        print(
            f"\nsamples per size: {len(polled[small])} in-process polls, "
            f"{len(over_http[small])} HTTP polls, {len(pings[small])} approvals"
        )
        print(f"housekeeping statements on the {large:,} store:")
        query_plans(sites[1])
    print(f"\ntotal time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
