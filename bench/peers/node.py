"""The Node peers: installed from `package-lock.json` into `bench/peers/node_modules` (which git
ignores) with `npm ci`, and started as one process each."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.harness import REPO

PEERS = Path(__file__).resolve().parent
MODULES = PEERS / "node_modules"
# Written by npm at the end of every install; older than the lock file means out of date.
INSTALLED = MODULES / ".package-lock.json"
OIDC_PROVIDER = "oidc-provider"
CEDAR_WASM = "@cedar-policy/cedar-wasm"


def missing_tools() -> list[str]:
    return [tool for tool in ("node", "npm") if shutil.which(tool) is None]


def install() -> bool:
    """Install the peers' packages unless the installed ones match the lock file; True if it
    ran `npm ci`."""
    lock = PEERS / "package-lock.json"
    if INSTALLED.exists() and INSTALLED.stat().st_mtime >= lock.stat().st_mtime:
        return False
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS, check=True
    )
    return True


def version(package: str) -> str:
    manifest = json.loads((MODULES / package / "package.json").read_text())
    return str(manifest["version"])


def node_version() -> str:
    return subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def oidc_provider_command(port: int, client_id: str, secret: str, resource: str) -> list[str]:
    return ["node", str(PEERS / "oidc_provider.mjs"), str(port), client_id, secret, resource]


def cedar_pdp_command(port: int, stores: dict[str, Path]) -> list[str]:
    folders = [f"{name}={path}" for name, path in stores.items()]
    return ["node", str(PEERS / "cedar_pdp.mjs"), str(port), *folders]


def store(name: str) -> Path:
    return REPO / "policies" / name
