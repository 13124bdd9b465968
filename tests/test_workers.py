"""`bridge serve --workers N`: N processes on one socket, on SQLite and on PostgreSQL, with
the guarantees of one process (one use per DPoP proof and per refresh token, whichever
worker answers), housekeeping done by one of them, a worker that dies replaced, and
`/metrics` adding up every worker's counters."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import bridge_process
from tests.oauth_fixtures import (
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    client_auth,
    exchange_form,
    idp_token,
    read_details,
    server_config,
)
from tests.replicas.cluster import Address, wait_for
from tests.support.postgres import PostgresDatabase
from tests.test_metrics import samples

pytest_plugins = ["tests.support.plugin"]

WORKERS = 2
METRICS = "\n[metrics]\nenabled = true\n"


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux: from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_worker(pid: int) -> bool:
    # uvicorn's supervisor also starts multiprocessing's resource tracker.
    return b"multiprocessing.spawn" in _cmdline(pid) and b"resource_tracker" not in _cmdline(pid)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[object, OAuthServer, str]]:
    folder = tmp_path_factory.mktemp(f"workers-{request.param}")
    storage = None
    if request.param == "postgres":
        database: PostgresDatabase = request.getfixturevalue("postgres_database")
        storage = f'url = "{database.url}"'
    config = server_config(folder, extra=METRICS, storage=storage)
    with (
        bridge_process(config, args=["--workers", str(WORKERS)]) as proc,
        httpx.Client(base_url=proc.url, timeout=20) as http,  # type: ignore[attr-defined]
    ):
        wait_for("both workers", lambda: len(_serving(proc)) == WORKERS)
        oauth = OAuthServer(Address(proc.url), http, config, folder)  # type: ignore[arg-type,attr-defined]
        yield proc, oauth, request.param


def _serving(proc: object) -> set[int]:
    return {pid for pid in children(proc.pid) if _is_worker(pid)}  # type: ignore[attr-defined]


def at_once(count: int, send: object) -> list[httpx.Response]:
    """`count` calls of `send` in parallel, each on a connection of its own (so that the
    kernel hands them to whichever worker accepts first)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: send(), range(count)))  # type: ignore[operator]


def test_the_supervisor_runs_the_workers_it_was_asked_for(
    served: tuple[object, OAuthServer, str],
) -> None:
    proc, oauth, _ = served
    assert len(_serving(proc)) == WORKERS
    assert oauth.http.get("/healthz").json() == {"status": "ok"}


def test_a_dpop_proof_is_used_once_whichever_worker_answers(
    served: tuple[object, OAuthServer, str],
) -> None:
    _, oauth, _ = served
    key = DPoPKey()
    proof = key.proof()
    form = exchange_form(read_details("c-1"), subject_token=idp_token())
    headers, body = client_auth("demo-public")

    def send() -> httpx.Response:
        return httpx.post(
            oauth.url + "/token",
            data={**body, **form},
            headers={**headers, "DPoP": proof},
            timeout=20,
        )

    answers = at_once(12, send)
    assert sorted(a.status_code for a in answers) == [200] + [400] * 11
    for refused in (a for a in answers if a.status_code == 400):
        assert (
            "already used" in assert_oauth_error(refused, "invalid_dpop_proof")["error_description"]
        )


def test_a_refresh_token_redeemed_at_once_on_every_worker_issues_once(
    served: tuple[object, OAuthServer, str],
) -> None:
    _, oauth, _ = served
    first = oauth.issued(exchange_form(read_details("c-1"), subject_token=idp_token()))
    headers, body = client_auth("demo-agent")
    form = {**body, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}

    def send() -> httpx.Response:
        return httpx.post(oauth.url + "/token", data=form, headers=headers, timeout=20)

    answers = at_once(10, send)
    # A refresh token is single-use: one rotation wins; the rest are reuse, which ends the
    # grant (so the winner's new refresh token is dead too).
    assert [a.status_code for a in answers].count(200) == 1
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    assert oauth.introspect(first["refresh_token"], client="demo-agent") == {"active": False}


def test_housekeeping_is_done_by_one_worker(served: tuple[object, OAuthServer, str]) -> None:
    proc, oauth, backend = served
    query = "SELECT holder FROM leases WHERE name = 'housekeeping'"

    def holders() -> list[str]:
        if backend == "sqlite":
            path = oauth.config.parent / "bridge.sqlite3"
            with sqlite3.connect(path, timeout=10) as db:
                return [row[0] for row in db.execute(query)]
        url = oauth.config.read_text().split('url = "')[1].split('"')[0]
        with psycopg.connect(url, autocommit=True) as conn:
            return [row[0] for row in conn.execute(query)]

    # The first pass is five seconds after start.
    wait_for("the housekeeping lease", lambda: holders() != [], seconds=30)
    ((holder,),) = [holders()]
    pid = int(holder.split(":")[1])
    assert pid in _serving(proc)
    passes = samples(oauth.http.get("/metrics").text).get("bridge_housekeeping_passes_total", {})
    assert passes.get((), 0.0) >= 1


def test_metrics_add_up_every_workers_counters(served: tuple[object, OAuthServer, str]) -> None:
    _, oauth, _ = served
    name = "bridge_http_requests_total"
    key = (("method", "GET"), ("route", "/healthz"), ("status", "200"))

    def healthz_count() -> float:
        found = samples(httpx.get(oauth.url + "/metrics", timeout=20).text)
        return found.get(name, {}).get(key, 0.0)

    before = healthz_count()
    answers = at_once(40, lambda: httpx.get(oauth.url + "/healthz", timeout=20))
    assert all(a.status_code == 200 for a in answers)
    # Every request counted once, whichever of the workers served it and whichever
    # answers the scrape.
    assert healthz_count() == before + 40
    assert healthz_count() == before + 40


def test_a_worker_that_dies_is_replaced(served: tuple[object, OAuthServer, str]) -> None:
    proc, oauth, _ = served
    victim = min(_serving(proc))
    os.kill(victim, signal.SIGKILL)
    wait_for(
        "a new worker",
        lambda: victim not in _serving(proc) and len(_serving(proc)) == WORKERS,
        seconds=30,
    )
    deadline = time.monotonic() + 10
    while True:
        answers = at_once(10, lambda: httpx.get(oauth.url + "/healthz", timeout=20))
        if all(a.status_code == 200 for a in answers) or time.monotonic() > deadline:
            break
    assert all(a.status_code == 200 for a in answers)
