"""Shared test fixtures: the real bridge served by uvicorn on a loopback port.

Two ways to run it:
- `ServerThread`: uvicorn in a thread of the test process (fast to start; the test can reach
  the app's state), still real HTTP over a loopback socket;
- `bridge_process`: `bridge serve` as a separate process, for tests that stop or kill it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bridge.app import create_app
from bridge.serving import CoalescingHttpToolsProtocol
from bridge.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"
# Copies of the AuthZEN interop data, at their paths in openid/authzen (see its README.md).
INTEROP = REPO / "tests" / "data" / "authzen-interop"


def interop_file(relative: str) -> Any:
    """An interop data file, by its path in the upstream repository."""
    path = INTEROP / relative
    if not path.is_file():
        pytest.fail(f"interop data not found: tests/data/authzen-interop/{relative}")
    return json.loads(path.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """A uvicorn server for `app` on 127.0.0.1, in a background thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket()
        # Without TCP_NODELAY a response written in two parts waits for a delayed ACK (~40 ms).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        # The HTTP protocol `bridge serve` runs (bridge.serving), so every test goes through it.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http=CoalescingHttpToolsProtocol,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def write_config(path: Path, stores: dict[str, Path], extra: str = "") -> Path:
    """A TOML config serving `stores`, plus any `extra` TOML text."""
    lines = ["[reload]", "interval_seconds = 0.2", ""]
    for name, folder in stores.items():
        lines += [f"[stores.{name}]", f"path = {json.dumps(str(folder))}", ""]
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path


def settings_for(tmp_path: Path, stores: dict[str, Path], extra: str = "") -> Settings:
    return load_settings(write_config(tmp_path / "bridge.toml", stores, extra))


# The stores of the shipped bridge.toml, which `make run` serves, in its order.
DEMO_STORES = ["default", "certification", "todo", "search", "gateway", "idp", "issuance"]
# The public URL of the tests' copy of the demo: fixed, whatever bridge.toml says.
DEMO_PUBLIC_URL = "https://bridge.test"


def write_demo_config(
    folder: Path, *, public_url: str = DEMO_PUBLIC_URL, port: int | None = None
) -> Path:
    """`folder/bridge.toml`: the demo of the shipped bridge.toml (the same stores, the demo
    approver issuer, the shipped profiles, a copy of clients.toml), with the given server
    URL and its state (database, keys) in `folder/var`, so that nothing the user sets in
    bridge.toml, and no state of `make run`, reaches the tests."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "clients.toml", folder / "clients.toml")
    shutil.copyfile(REPO / "users.toml", folder / "users.toml")
    server = ['host = "127.0.0.1"', f"public_url = {json.dumps(public_url)}"]
    if port is not None:
        server.insert(1, f"port = {port}")
    lines = [
        "[server]",
        *server,
        "",
        "[access_requests]",
        'demo_approver_key_file = "var/demo-approvers.jwk"',
        "allow_anonymous_requesters = true",
        "",
        "[metrics]",
        "enabled = true",
        "",
        "[oauth]",
        'clients_file = "clients.toml"',
        f"profiles_dir = {json.dumps(str(REPO / 'profiles'))}",
        "",
    ]
    for name in DEMO_STORES:
        lines += [f"[stores.{name}]", f"path = {json.dumps(str(POLICIES / name))}", ""]
    path = folder / "bridge.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings)) as server:
        yield server


@contextlib.contextmanager
def bridge_process(
    config: Path, port: int | None = None, args: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """`bridge serve` (with `args`) in its own process; yields once `/healthz` answers."""
    port = port or free_port()
    log = config.with_suffix(".log").open("wb")
    command = ["serve", "--config", str(config), "--port", str(port), *args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bridge exited: {config.with_suffix('.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200:  # type: ignore[attr-defined]
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("bridge did not start in time")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The bridge as `make run` configures it (all shipped stores, public URL
    DEMO_PUBLIC_URL), shared by many tests."""
    config = write_demo_config(tmp_path_factory.mktemp("demo"))
    with serve(load_settings(config)) as server:
        yield server


@pytest.fixture(scope="session")
def client(demo_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.url, timeout=10) as http:
        yield http
