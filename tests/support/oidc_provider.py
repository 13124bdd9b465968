"""A real, independent OpenID Provider (node-oidc-provider) for sign-in tests.

Why an independent provider: the bridge's OpenID Connect client side must be checked against
an implementation that shares none of its code and follows the specifications strictly
(PKCE, exact redirect URIs, signed ID tokens, discovery). node-oidc-provider is a certified
implementation; `oidc_provider/provider.mjs` configures it from a JSON file this module writes:
the clients and accounts the test asks for, PKCE (S256) required for every client, a fresh
RS256 signing key per run, and everything kept in memory.

Set-up: Node (20.19 or newer) must be on PATH; the npm packages are installed with `npm ci`
from the committed package-lock.json into `oidc_provider/node_modules` on first use (and again
when the lock file changes). The provider listens on a free 127.0.0.1 port it picks itself;
its issuer is `http://127.0.0.1:<port>`.

Signing in from a browser test uses oidc-provider's development pages, which work over plain
http on 127.0.0.1: their cookies are `Secure` only when the request came over https, and are
`SameSite=Lax`, which a top-level redirect back from the provider keeps. The login page has
the fields `login` (the account's `sub`) and `password`, and the button "Sign-in"; the consent
page has the button "Continue". `sign_in` does both. An unknown login or a wrong password
brings the login page back.

    async def test_sign_in(oidc_provider: OidcProvider, page: Page) -> None:
        await page.goto(authorization_url)
        await sign_in(page, oidc_provider, oidc_provider.account("alice"))
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.support._common import ServiceSetupError, file_tail, run, wait_until

WHAT = "OpenID Provider for tests (node-oidc-provider)"
PROVIDER_DIR = Path(__file__).resolve().with_name("oidc_provider")
SCRIPT = PROVIDER_DIR / "provider.mjs"
LOCK_FILE = PROVIDER_DIR / "package-lock.json"
NODE_MODULES = PROVIDER_DIR / "node_modules"
# Written after a successful `npm ci`: the lock file's hash it installed.
STAMP = NODE_MODULES / ".installed-lock-sha256"
MIN_NODE = (20, 19)
START_TIMEOUT = 30
SCOPES = "openid email profile groups"


@dataclass(frozen=True)
class OidcAccount:
    """A user the provider knows: `sub` is also the login name on the sign-in page."""

    sub: str
    password: str
    claims: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return {"sub": self.sub, "password": self.password, "claims": dict(self.claims)}


@dataclass(frozen=True)
class OidcClient:
    """A client registered at the provider.

    `client_secret` None makes a public client (`token_endpoint_auth_method` "none"); PKCE is
    required either way. `application_type` "native" lets any port of a loopback redirect URI
    match (RFC 8252 §7.3), for a callback server whose port is picked at run time; "web"
    clients need the exact URI. `skip_consent` makes the provider grant what a "web" client
    asks for without the consent page (oidc-provider always asks a native client's user).
    """

    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None
    application_type: str = "web"
    skip_consent: bool = False
    grant_types: tuple[str, ...] = ("authorization_code",)
    token_endpoint_auth_method: str | None = None

    @property
    def is_public(self) -> bool:
        return self.client_secret is None

    def metadata(self) -> dict[str, Any]:
        """oidc-provider client metadata (RFC 7591 names) for the JSON configuration."""
        method = self.token_endpoint_auth_method or (
            "none" if self.is_public else "client_secret_basic"
        )
        metadata: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": ["code"],
            "application_type": self.application_type,
            "token_endpoint_auth_method": method,
            "skip_consent": self.skip_consent,
        }
        if self.client_secret is not None:
            metadata["client_secret"] = self.client_secret
        return metadata


@dataclass(frozen=True)
class OidcProvider:
    """The running provider: its issuer and discovery metadata, clients and accounts."""

    issuer: str
    metadata: Mapping[str, Any]
    clients: tuple[OidcClient, ...]
    accounts: tuple[OidcAccount, ...]
    registration_token: str
    log_path: Path

    @property
    def authorization_endpoint(self) -> str:
        return str(self.metadata["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def jwks_uri(self) -> str:
        return str(self.metadata["jwks_uri"])

    @property
    def userinfo_endpoint(self) -> str:
        return str(self.metadata["userinfo_endpoint"])

    def client(self, client_id: str) -> OidcClient:
        for client in self.clients:
            if client.client_id == client_id:
                return client
        raise KeyError(f"no client {client_id!r}; the provider has {self.client_ids}")

    @property
    def client_ids(self) -> list[str]:
        return [client.client_id for client in self.clients]

    def account(self, sub: str) -> OidcAccount:
        for account in self.accounts:
            if account.sub == sub:
                return account
        raise KeyError(f"no account {sub!r}")

    def log(self) -> str:
        """What the provider printed (warnings, refused sign-ins), for assertion messages."""
        return file_tail(self.log_path, 200)

    def register_client(
        self,
        redirect_uris: Sequence[str],
        *,
        public: bool = False,
        skip_consent: bool = False,
    ) -> OidcClient:
        """Register a new client through Dynamic Client Registration (RFC 7591).

        For tests whose redirect URI is known only once their server runs: the provider
        keeps exact matching for "web" clients, as a production provider would.
        """
        body: dict[str, Any] = {
            "redirect_uris": list(redirect_uris),
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none" if public else "client_secret_basic",
            "skip_consent": skip_consent,
        }
        response = httpx.post(
            str(self.metadata["registration_endpoint"]),
            json=body,
            headers={"Authorization": f"Bearer {self.registration_token}"},
            timeout=10,
        )
        if response.status_code != 201:
            raise AssertionError(
                f"client registration failed: {response.status_code} {response.text}"
            )
        registered = response.json()
        return OidcClient(
            client_id=registered["client_id"],
            client_secret=registered.get("client_secret"),
            redirect_uris=tuple(registered["redirect_uris"]),
            skip_consent=skip_consent,
        )


def default_accounts() -> tuple[OidcAccount, ...]:
    """Two users: Alice, an approver and admin; Bob, in no group."""
    return (
        OidcAccount(
            sub="alice",
            password="alice-password",
            claims={
                "email": "alice@example.test",
                "email_verified": True,
                "name": "Alice Approver",
                "preferred_username": "alice",
                "groups": ["approvers", "admins"],
            },
        ),
        OidcAccount(
            sub="bob",
            password="bob-password",
            claims={
                "email": "bob@example.test",
                "email_verified": True,
                "name": "Bob Builder",
                "preferred_username": "bob",
                "groups": [],
            },
        ),
    )


def default_clients() -> tuple[OidcClient, ...]:
    """A confidential and a public client, both redirecting to any loopback port's /callback."""
    return (
        OidcClient(
            client_id="bridge",
            client_secret=secrets.token_urlsafe(24),
            redirect_uris=("http://127.0.0.1/callback",),
            application_type="native",
        ),
        OidcClient(
            client_id="bridge-public",
            redirect_uris=("http://127.0.0.1/callback",),
            application_type="native",
        ),
    )


def _node_version(node: str) -> tuple[int, ...]:
    result = run([node, "--version"], what=f"{WHAT}: node --version", timeout=30)
    return tuple(int(part) for part in re.findall(r"\d+", result.stdout)[:3])


def find_node() -> str:
    """The `node` executable, checked to be recent enough for oidc-provider 9."""
    node = shutil.which("node")
    if node is None:
        raise ServiceSetupError(
            f"{WHAT}: Node.js {'.'.join(map(str, MIN_NODE))} or newer must be on PATH "
            "(Debian 12's own nodejs package is too old)"
        )
    version = _node_version(node)
    if version[:2] < MIN_NODE:
        raise ServiceSetupError(
            f"{WHAT}: {node} is version {'.'.join(map(str, version))}; "
            f"oidc-provider 9 needs {'.'.join(map(str, MIN_NODE))} or newer"
        )
    return node


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """One `npm ci` at a time for this checkout (parallel pytest runs share node_modules)."""
    key = hashlib.sha256(str(PROVIDER_DIR).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"authzen-bridge-tests-npm-{key}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_node_modules() -> None:
    """`npm ci` from the committed lock file, unless node_modules already matches it."""
    wanted = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    with _install_lock():
        if STAMP.is_file() and STAMP.read_text(encoding="utf-8").strip() == wanted:
            return
        npm = shutil.which("npm")
        if npm is None:
            raise ServiceSetupError(f"{WHAT}: npm must be on PATH to install oidc-provider")
        env = {
            **os.environ,
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
        # --ignore-scripts: none of these packages needs an install script.
        run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            what=f"{WHAT}: npm ci in {PROVIDER_DIR}",
            cwd=PROVIDER_DIR,
            env=env,
            timeout=600,
        )
        STAMP.write_text(wanted + "\n", encoding="utf-8")


def _read_ready(path: Path) -> dict[str, Any] | None:
    try:
        line = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if not line.endswith("\n"):
        return None
    ready: dict[str, Any] = json.loads(line)
    return ready


def _discovery(issuer: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    metadata: dict[str, Any] = response.json()
    return metadata


@contextlib.contextmanager
def run_oidc_provider(
    clients: Sequence[OidcClient] | None = None,
    accounts: Sequence[OidcAccount] | None = None,
    *,
    claims: Mapping[str, Sequence[str]] | None = None,
    id_token_claims: bool = True,
    port: int = 0,
) -> Iterator[OidcProvider]:
    """Start node-oidc-provider with these clients and accounts; stop it after the block.

    `claims` maps scopes to the claims they release (default: email, profile, groups);
    `id_token_claims` puts those claims in the ID token too, not only in userinfo. `port`
    (default: a free one) lets a test start a second provider at the issuer of one it
    stopped: the same provider to its clients, with a fresh signing key (a key rotation).
    """
    node = find_node()
    ensure_node_modules()
    clients = tuple(default_clients() if clients is None else clients)
    accounts = tuple(default_accounts() if accounts is None else accounts)
    registration_token = secrets.token_urlsafe(24)
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "clients": [client.metadata() for client in clients],
        "accounts": [account.config() for account in accounts],
        "id_token_claims": id_token_claims,
        "registration_token": registration_token,
    }
    if claims is not None:
        config["claims"] = {scope: list(names) for scope, names in claims.items()}

    with tempfile.TemporaryDirectory(prefix="bridge-oidc-") as folder:
        base = Path(folder)
        config_path = base / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        ready_path = base / "ready.json"
        log_path = base / "provider.log"
        with ready_path.open("w") as ready_out, log_path.open("w") as log_out:
            process = subprocess.Popen(
                [node, str(SCRIPT), str(config_path)],
                stdout=ready_out,
                stderr=log_out,
                stdin=subprocess.DEVNULL,
                cwd=PROVIDER_DIR,
            )
        try:
            wait_until(
                lambda: _read_ready(ready_path) is not None,
                timeout=START_TIMEOUT,
                what=f"{WHAT}: start",
                exited=lambda: process.poll() is not None,
                log=lambda: file_tail(log_path),
            )
            ready = _read_ready(ready_path)
            assert ready is not None
            issuer = str(ready["issuer"])
            found: list[dict[str, Any]] = []

            def discovered() -> bool:
                metadata = _discovery(issuer)
                if metadata is not None:
                    found.append(metadata)
                return metadata is not None

            wait_until(
                discovered,
                timeout=START_TIMEOUT,
                what=f"{WHAT}: {issuer}/.well-known/openid-configuration",
                exited=lambda: process.poll() is not None,
                log=lambda: file_tail(log_path),
            )
            if found[0].get("issuer") != issuer:
                raise ServiceSetupError(f"{WHAT}: discovery names issuer {found[0].get('issuer')}")
            yield OidcProvider(
                issuer=issuer,
                metadata=found[0],
                clients=clients,
                accounts=accounts,
                registration_token=registration_token,
                log_path=log_path,
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


async def sign_in(
    page: Page, provider: OidcProvider, account: OidcAccount, *, password: str | None = None
) -> None:
    """Sign `account` in on the provider's login page the browser is showing, and consent.

    Call it after `page.goto(authorization_url)`. It fills "login" and "password", presses
    "Sign-in", then presses "Continue" on the consent page when the provider shows one, and
    returns once the browser has been redirected away from the provider (to the client's
    redirect URI, which the test must serve). `password` overrides the account's, to test
    a refused sign-in: then it returns with the login page shown again.
    """
    interaction = f"{provider.issuer}/interaction/"
    if not page.url.startswith(interaction):
        raise AssertionError(f"not on the provider's login page: {page.url}")
    await page.locator('input[name="login"]').fill(account.sub)
    await page.locator('input[name="password"]').fill(
        account.password if password is None else password
    )
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign-in").click()
    if not page.url.startswith(interaction):
        return
    if await page.locator('input[name="login"]').count():
        return  # refused: the login page again
    async with page.expect_navigation():
        await page.get_by_role("button", name="Continue").click()


@pytest.fixture(scope="session", name="oidc_provider")
def _oidc_provider() -> Iterator[OidcProvider]:
    """The session's provider: clients "bridge" (confidential) and "bridge-public", and the
    accounts "alice" and "bob"; `register_client` adds clients with exact redirect URIs."""
    with run_oidc_provider() as provider:
        yield provider
