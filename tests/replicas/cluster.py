"""Several `bridge serve` processes on one PostgreSQL database, over real HTTP on loopback:
what the replica tests run against (this module holds no tests).

Each replica is `tests.conftest.bridge_process` with a configuration of its own (its log is
`<name>.log` beside it) written by `tests.oauth_fixtures.server_config` from the same parts:
the same `storage.url`, key-encryption key file, client registry (the DTR tests' clients,
`ping-agent` notified at the test's listener), demo approver key file and policies, and
`access_requests.allow_private_callbacks` so pings may go to loopback. The shared files are
made before any replica starts, as an operator provisions them; the replicas start at the
same moment, on a database that may be empty (so they race to migrate it and to make the
first signing key).

Every replica carries the DTR tests' helpers (`tests.dtr_fixtures.DTRServer`: deferring,
polling, the approver API) bound to its own URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bridge.deferral.codes import DeferralKeys
from bridge.demo_approvers import demo_key
from bridge.jose.sealing import load_key_encryption_key
from bridge.settings import Settings, load_settings
from tests.conftest import POLICIES, bridge_process, free_port
from tests.dtr_fixtures import DTRServer, dtr_clients, dtr_config_text
from tests.oauth_fixtures import OAuthServer, server_config
from tests.support.postgres import PostgresDatabase

NAMES = ("a", "b", "c")


@dataclass(frozen=True)
class Address:
    """What `OAuthServer` needs of a server: where it answers."""

    url: str


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    dtr: DTRServer  # the DTR helpers, on this replica

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def oauth(self) -> OAuthServer:
        return self.dtr.oauth

    @property
    def http(self) -> httpx.Client:
        return self.dtr.http


@dataclass
class Cluster:
    folder: Path
    config: Path
    settings: Settings
    database: PostgresDatabase
    replicas: list[Replica]

    def __getitem__(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the shared database from outside (a connection of the test's own)."""
        with psycopg.connect(self.database.url, autocommit=True) as conn:
            return conn.execute(query, args).fetchall()

    def code_hash(self, code: str) -> str:
        kek = load_key_encryption_key(
            self.settings.resolve(self.settings.oauth.key_encryption_key_file)
        )
        return DeferralKeys(kek).code_hash(code)

    def deferral_status(self, code: str) -> str:
        ((status,),) = self.rows(
            "SELECT status FROM deferrals WHERE code_hash = %s", self.code_hash(code)
        )
        return str(status)

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no shutdown, no lease given back."""
        os.kill(replica.proc.pid, signal.SIGKILL)
        assert replica.proc.wait(timeout=10) == -signal.SIGKILL


def write_configs(
    folder: Path,
    database: PostgresDatabase,
    ping_endpoint: str,
    *,
    storage: str = "",
    deferral: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """The one configuration every replica copies (`extra` TOML at its end); the shared key
    files made up front."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = (
        '\n[server]\nlog_level = "info"\naccess_log = false\n'
        + dtr_config_text(
            folder,
            deferral={"interval_seconds": 1, "ping_delay_seconds": 0, **(deferral or {})},
            allow_private_callbacks=True,
        )
        + extra
    )
    config = server_config(
        folder,
        clients=dtr_clients(ping_endpoint),
        policies=POLICIES / "default",
        extra=extra,
        storage=f"url = {json.dumps(database.url)}\npool_max_size = 4\n{storage}",
    )
    settings = load_settings(config)
    # Provisioned before the replicas start: the same KEK and demo approver key everywhere.
    load_key_encryption_key(settings.resolve(settings.oauth.key_encryption_key_file))
    key_file = settings.access_requests.demo_approver_key_file
    assert key_file is not None
    demo_key(settings.resolve(key_file))
    return config


@contextlib.contextmanager
def cluster(
    folder: Path,
    database: PostgresDatabase,
    ping_endpoint: str,
    *,
    names: tuple[str, ...] = NAMES,
    storage: str = "",
    deferral: dict[str, Any] | None = None,
    extra: str = "",
) -> Iterator[Cluster]:
    """`bridge serve` once per name, all started at once on `database`; yields once every
    one answers `/healthz`."""
    config = write_configs(
        folder, database, ping_endpoint, storage=storage, deferral=deferral, extra=extra
    )
    settings = load_settings(config)
    with contextlib.ExitStack() as stack:
        copies = []
        for name in names:
            copy = folder / f"{name}.toml"
            shutil.copyfile(config, copy)
            copies.append((name, copy, free_port()))
        managers = [bridge_process(copy, port) for _, copy, port in copies]
        with ThreadPoolExecutor(len(managers)) as starting:
            started = list(starting.map(_enter, managers))
        for manager, proc in zip(managers, started, strict=True):
            if isinstance(proc, BaseException):
                continue
            stack.push(manager.__exit__)
        failed = [proc for proc in started if isinstance(proc, BaseException)]
        if failed:
            raise failed[0]
        replicas = []
        for (name, _, port), proc in zip(copies, started, strict=True):
            http = stack.enter_context(
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
            )
            oauth = OAuthServer(Address(f"http://127.0.0.1:{port}"), http, config, POLICIES)  # type: ignore[arg-type]
            replicas.append(Replica(name, proc, port, DTRServer(oauth, settings, folder)))  # type: ignore[arg-type]
        yield Cluster(folder, config, settings, database, replicas)


def _enter(manager: contextlib.AbstractContextManager[Any]) -> Any:
    try:
        return manager.__enter__()
    except BaseException as exc:  # reported by the caller, after the others are registered
        return exc


def wait_for(what: str, condition: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- a notification endpoint that can hold a delivery open ---------------------------------


@dataclass(frozen=True)
class Arrival:
    code: str
    peer_port: int  # the sending socket's port: which process sent it (`sender_of`)
    status: int | None  # what was answered; None while held, or if the sender was gone


class HoldingListener:
    """Records every ping (and from which client port it came); holds the first `hold`
    deliveries open (no answer) until `release()`, answers every other one 204."""

    def __init__(self, hold: int = 0) -> None:
        self.arrivals: list[Arrival] = []
        self._hold = hold
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code = str(json.loads(self.rfile.read(length) or b"{}").get("deferral_code"))
                with listener._changed:
                    index = len(listener.arrivals)
                    held = index < listener._hold
                    listener.arrivals.append(Arrival(code, self.client_address[1], None))
                    listener._changed.notify_all()
                if held:
                    listener._released.wait(60)
                    if _peer_gone(self.connection):
                        return  # the sender died meanwhile: it can learn of no answer
                try:
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except OSError:
                    return  # the sender is gone: nothing was delivered
                with listener._changed:
                    listener.arrivals[index] = Arrival(code, self.client_address[1], 204)
                    listener._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/cb"

    def wait(self, count: int, timeout: float = 30.0) -> list[Arrival]:
        """The arrivals, once there are at least `count`."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise AssertionError(f"{len(self.arrivals)} of {count} pings arrived")
            return list(self.arrivals)

    def delivered(self) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.status == 204]

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> HoldingListener:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


def _peer_gone(connection: socket.socket) -> bool:
    """True when the other end has closed the connection (its process died)."""
    connection.setblocking(False)
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # nothing to read, still open
    except OSError:
        return True
    finally:
        connection.setblocking(True)


def sender_of(peer_port: int, to_port: int, replicas: list[Replica]) -> Replica:
    """The replica whose process holds the TCP connection from `peer_port` to `to_port` on
    loopback (Linux: the socket's inode in /proc/net/tcp, then in each process's fds)."""
    wanted = f":{peer_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(wanted) and fields[2].endswith(f":{to_port:04X}"):
            inode = fields[9]
    assert inode is not None, f"no connection from port {peer_port} to {to_port}"
    for replica in replicas:
        if replica.proc.poll() is not None:
            continue  # gone, and its sockets with it
        for fd in Path(f"/proc/{replica.proc.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == f"socket:[{inode}]":
                    return replica
    raise AssertionError(f"no replica holds the connection from port {peer_port}")
