"""The bridge under test: `bridge serve` in its own process, configured like `make run`.

The configuration is derived from the repository's `bridge.toml` each run (so it stays the
demo's: the same stores, client registry, RAR profiles and demo approver key option) with
only what must differ changed: a free loopback port, and the database, key-encryption key
and demo approver key in a temporary folder, so a run never touches `var/`; and the SSF
transmitter on, with one receiver whose bearer tokens the driver signs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "bridge.toml"
# The venv's own `bridge` script, beside the interpreter running this module.
BRIDGE = Path(sys.executable).parent / "bridge"
# The SSF receiver the fuzz configuration names (its tokens open the stream management API).
RECEIVER_ISSUER = "https://receiver-idp.fuzz.example"
RECEIVER_SUBJECT = "fuzz-receiver"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _absolute(value: str) -> str:
    path = Path(value)
    return str(path if path.is_absolute() else REPO / path)


def demo_settings(folder: Path, port: int) -> dict[str, Any]:
    """`bridge.toml` as data, with paths made absolute and state moved into `folder`."""
    raw: dict[str, Any] = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    url = f"http://127.0.0.1:{port}"
    raw.setdefault("server", {}).update(host="127.0.0.1", port=port, public_url=url)
    for store in raw.get("stores", {}).values():
        store["path"] = _absolute(store["path"])
    oauth = raw.setdefault("oauth", {})
    oauth["clients_file"] = _absolute(oauth.get("clients_file", "clients.toml"))
    oauth["profiles_dir"] = _absolute(oauth.get("profiles_dir", "profiles"))
    oauth["key_encryption_key_file"] = str(folder / "signing-keys.kek")
    raw.setdefault("storage", {})["path"] = str(folder / "bridge.sqlite3")
    access = raw.setdefault("access_requests", {})
    access["demo_approver_key_file"] = str(folder / "demo-approvers.jwk")
    # The SSF transmitter on, with one receiver whose tokens this driver signs, so that the
    # stream management API and poll delivery answer as they do where they are configured.
    receiver_key = ECKey.generate_key("P-256", parameters={"kid": "fuzz-receiver"}, private=True)
    (folder / "receiver.jwk").write_text(json.dumps(receiver_key.as_dict(private=True)))
    oauth.setdefault("trusted_issuers", []).append(
        {"issuer": RECEIVER_ISSUER, "jwks": {"keys": [receiver_key.as_dict(private=False)]}}
    )
    # A transmitter whose SETs the push endpoint takes (none of the generated ones is signed
    # by it: they all meet a refusal, which is what the run checks).
    pager_key = ECKey.generate_key("P-256", parameters={"kid": "fuzz-pager"}, private=False)
    raw["events"] = {
        "transmitters": [
            {
                "name": "fuzz-pager",
                "issuer": "https://pager.fuzz.example",
                "jwks": {"keys": [pager_key.as_dict(private=False)]},
                "events": ["urn:authzen-bridge:event-type:access-request-decision"],
            }
        ],
        "transmitter": {
            "enabled": True,
            "receivers": [
                {
                    "name": "fuzz",
                    "issuer": RECEIVER_ISSUER,
                    "subject": RECEIVER_SUBJECT,
                    "audience": "https://receiver.fuzz.example",
                }
            ],
        },
    }
    return raw


def to_toml(data: Mapping[str, Any]) -> str:
    """TOML for configuration data: tables, arrays of tables, strings, numbers, booleans."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {
        k: v
        for k, v in data.items()
        if isinstance(v, list) and v and all(isinstance(i, Mapping) for i in v)
    }
    for key, value in data.items():
        if key not in tables and key not in arrays:
            lines.append(f"{json.dumps(key)} = {_value(value)}")
    for key, value in tables.items():
        lines += ["", f"[{'.'.join(json.dumps(p) for p in [*path, key])}]"]
        _table(lines, [*path, key], value)
    for key, items in arrays.items():
        for item in items:
            lines += ["", f"[[{'.'.join(json.dumps(p) for p in [*path, key])}]]"]
            _table(lines, [*path, key], item)


def _value(value: Any) -> str:
    # JSON strings, numbers and booleans are valid TOML; inline tables need TOML syntax.
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


@dataclass(frozen=True)
class RunningBridge:
    url: str
    config: Path
    log: Path
    process: subprocess.Popen[bytes]

    def receiver_token(self) -> str:
        """A bearer token of the configured SSF receiver for the stream management API
        (`aud`: `<public_url>/ssf`), valid for the run."""
        key = ECKey.import_key(json.loads((self.config.parent / "receiver.jwk").read_text()))
        now = int(time.time())
        claims = {
            "iss": RECEIVER_ISSUER,
            "sub": RECEIVER_SUBJECT,
            "aud": self.url + "/ssf",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": "ES256", "kid": "fuzz-receiver"}, claims, key)

    def approver_token(self, sub: str = "manager-1") -> str:
        """A demo approver's bearer token, as `bridge approvers token SUB` prints it."""
        out = subprocess.run(
            [str(BRIDGE), "approvers", "token", sub, "--config", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()


@contextlib.contextmanager
def running_bridge(folder: Path, *, start_timeout: float = 60) -> Iterator[RunningBridge]:
    """`bridge serve` with the demo-equivalent configuration, until the block ends."""
    port = free_port()
    config = folder / "bridge.toml"
    config.write_text(to_toml(demo_settings(folder, port)), encoding="utf-8")
    log = folder / "bridge.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BRIDGE), "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        bridge = RunningBridge(f"http://127.0.0.1:{port}", config, log, process)
        try:
            _wait_ready(bridge, start_timeout)
            yield bridge
        finally:
            _stop(process)


def _wait_ready(bridge: RunningBridge, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if bridge.process.poll() is not None:
            raise RuntimeError(f"bridge serve exited:\n{bridge.log.read_text(errors='replace')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(bridge.url + "/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"bridge serve did not become ready in {timeout:.0f} s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
