"""Helpers shared by the tests/test_deferral_*.py files (this module holds no tests).

The store is the real SQLite store: a class combining the outbox and the deferral tables,
as `SQLiteStore` does once the deferral mixin is wired in. Time is a `FakeClock` the tests
move, so no test sleeps through a poll interval.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.deferral import DeferralService, PollResult, Resolution
from bridge.oauth.clients import Client, hash_secret
from bridge.settings import DeferralSettings
from bridge.store.sqlite import SQLiteStore

KEK = bytes(range(32))
T0 = 1_900_000_000.0
SNAPSHOT: dict[str, Any] = {
    "grant_type": "client_credentials",
    "authorization_details": [{"type": "customer_records", "actions": ["read"]}],
}


DeferralStore = SQLiteStore


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_client(client_id: str = "agent-1", endpoint: str | None = None) -> Client:
    client = Client(
        client_id=client_id, auth_method="client_secret_basic", secret_hash=hash_secret("s")
    )
    if endpoint is not None:
        # The registry accepts https only; tests ping a loopback http listener.
        client = client.model_copy(update={"notification_endpoint": endpoint})
    return client


def make_settings(**overrides: Any) -> DeferralSettings:
    values: dict[str, Any] = {
        "code_lifetime_seconds": 3600,
        "interval_seconds": 5,
        "slow_down_seconds": 5,
        "poll_tolerance_seconds": 1.0,
        "max_slow_downs": 10,
        "ping_delay_seconds": 0.0,
        **overrides,
    }
    return DeferralSettings(**values)


@contextlib.asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[DeferralStore]:
    store = DeferralStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def approve(until: float | None = None) -> Any:
    """A `decide` callback that approves (recording what it was asked)."""
    calls: list[tuple[dict[str, Any], str]] = []

    async def decide(snapshot: dict[str, Any], task_id: str) -> Resolution:
        calls.append((snapshot, task_id))
        return Resolution(ok=True, approved_until=until, approvals=[{"id": "ar_1"}])

    decide.calls = calls  # type: ignore[attr-defined]
    return decide


async def deny_all(snapshot: dict[str, Any], task_id: str) -> Resolution:
    return Resolution(ok=False)


async def ready(service: DeferralService, client: Client, code: str) -> PollResult:
    return await service.poll(client, code, None)


class Listener:
    """A client's notification endpoint on a loopback port: answers requests from `script`
    (then 204) and records every request it gets."""

    def __init__(self, script: list[int | tuple[int, dict[str, str]]], tls: Any = None) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                listener.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                step = listener.script.pop(0) if listener.script else 204
                status, headers = step if isinstance(step, tuple) else (step, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Listener:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(folder: Path, host_name: str) -> tuple[Path, Path]:
    """(certificate, key) files of a self-signed certificate for `host_name` only (no IP
    address in it, so a verified connection proves the name was checked)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
