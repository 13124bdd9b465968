"""What a new user runs into first: `bridge --version`, the startup line, `bridge keys list`
on a fresh folder, `bridge approvers token --minutes`, `bridge clients add` refusing what
`bridge serve` would refuse, a reloaded registry that a fresh start would refuse, readable
pattern messages, `GET /token`; and what an attacker would try on the way: credentials in a
query string (refused, never logged), a bug on a route (a protocol error, and the connection
keeps serving)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.access_log import redact_query
from bridge.app import startup_line
from bridge.authzen.cedar.engine import CedarPDP
from bridge.jose.signing_keys import SigningKeys
from bridge.settings import load_settings
from tests.conftest import REPO, ServerThread, bridge_process, serve, write_demo_config
from tests.oauth_fixtures import basic_header, rar

DEMO_AGENT = {"Authorization": basic_header("demo-agent", "demo-agent-secret")["Authorization"]}


def bridge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    folder = tmp_path_factory.mktemp("new-user")
    with serve(load_settings(write_demo_config(folder))) as server:
        yield server


def test_version(tmp_path: Path) -> None:
    result = bridge("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("AuthZEN Bridge ") and result.stdout.strip() != "AuthZEN Bridge"


def test_keys_list_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("")
    result = bridge("keys", "list", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no signing keys yet" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bridge.toml"]


def test_approver_tokens_live_at_least_a_minute(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    for minutes in ("0", "-5", "soon"):
        result = bridge("approvers", "token", "manager-1", "--minutes", minutes, "--config",
                        str(config), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2 and "--minutes" in result.stderr
    made = bridge("approvers", "token", "manager-1", "--minutes", "1", "--config", str(config),
                  cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0 and made.stdout.count(".") == 2


def test_the_startup_line_and_a_redacted_access_log(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    with bridge_process(config) as proc:
        url = proc.url  # type: ignore[attr-defined]
        secret = "s3cr3t-in-the-url"
        response = httpx.post(
            f"{url}/token?client_secret={secret}&grant_type=client_credentials",
            data={"grant_type": "client_credentials", "scope": "customer_records:read"},
            headers=DEMO_AGENT,
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert "not in the URL" in response.json()["error_description"]
        for path in ("/introspect", "/revoke"):
            refused = httpx.post(f"{url}{path}?token=x", data={"token": "x"}, headers=DEMO_AGENT)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        time.sleep(0.3)  # the access log line is written after the answer
    log = config.with_suffix(".log").read_text()
    assert secret not in log
    assert "/token?client_secret=…&grant_type=…" in log
    line = next(ln for ln in log.splitlines() if "AuthZEN Bridge" in ln and " at " in ln)
    assert "https://bridge.test" in line and "stores default (" in line
    assert "storage SQLite" in line and "demo approver issuer ON" in line


def test_query_values_are_redacted() -> None:
    assert redact_query("/token?client_secret=x&a=") == "/token?client_secret=…&a=…"
    assert redact_query("/jwks") == "/jwks"
    assert redact_query("/x?%ff=1") == "/x?…"


def test_clients_add_refuses_what_serve_refuses(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    before = (tmp_path / "clients.toml").read_text()
    for flag, value in (("--type", "no_such_type"), ("--scope", "no:such:scope")):
        result = bridge("clients", "add", "newcomer", "--auth-method", "client_secret_basic",
                        flag, value, "--config", str(config), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1
        assert "which no profile" in result.stderr and value in result.stderr
    assert (tmp_path / "clients.toml").read_text() == before
    check = bridge("check", "--config", str(config), cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_a_registry_a_fresh_start_would_refuse_is_not_taken(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path)
    clients = tmp_path / "clients.toml"
    with serve(load_settings(config)) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/readyz").json()["clients"] == {"ready": True}
        good = clients.read_text()
        clients.write_text(good.replace('scopes = ["customer_records:read"]', 'scopes = ["x:y"]'))
        deadline = time.monotonic() + 5
        while (ready := http.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.status_code == 503
        assert "'x:y', which no profile maps" in ready.json()["clients"]["error"]
        # The last good registry stays in force.
        token = http.post(
            "/token",
            data={"grant_type": "client_credentials", "scope": "customer_records:read"},
            headers=DEMO_AGENT,
        )
        assert token.status_code == 200, token.text
        clients.write_text(good + "\n")
        deadline = time.monotonic() + 5
        while (ready := http.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.json()["clients"] == {"ready": True}


def test_a_pattern_is_shown_as_it_means(demo: ServerThread) -> None:
    details = [{"type": "customer_records", "actions": ["read"],
                "locations": ["https://crm.example.org/customers/cust-0001"]}]  # fmt: skip
    response = httpx.post(
        demo.url + "/token",
        data={"grant_type": "client_credentials", "authorization_details": rar(details)},
        headers=DEMO_AGENT,
    )
    description = response.json()["error_description"]
    assert "^https://crm[.]example[.]com/customers/[^/]+$" in description
    assert "crm/." not in description


def test_get_token_answers_in_oauth_words(demo: ServerThread) -> None:
    response = httpx.get(demo.url + "/token")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert response.headers["allow"] == "POST"
    missing = httpx.get(demo.url + "/access/v1/requests/nothing-here/deeper")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def local_port(response: httpx.Response) -> int:
    sock = response.extensions["network_stream"].get_extra_info("socket")
    port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def buggy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug deep in the policy engine and in the key store: what no route expects."""

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CedarPDP, "evaluate", broken)
    monkeypatch.setattr(SigningKeys, "jwks", broken)


def test_a_bug_answers_in_the_routes_protocol_and_the_connection_serves_on(
    demo: ServerThread, buggy_engine: None, caplog: pytest.LogCaptureFixture
) -> None:
    evaluation = {"subject": {"type": "client", "id": "demo-agent"}, "action": {"name": "read"},
                  "resource": {"type": "CustomerRecord", "id": "cust-0001"}}  # fmt: skip
    with httpx.Client(base_url=demo.url) as http, caplog.at_level(logging.ERROR, "bridge"):
        failed = http.post("/access/v1/evaluation", json=evaluation)
        first_port = local_port(failed)
        assert failed.status_code == 500
        assert failed.json() == {"error": {"status": 500, "message": "internal error"}}
        assert "Traceback" not in failed.text
        keys = http.get("/jwks")
        assert keys.status_code == 500 and keys.json()["error"]["status"] == 500
        # The same keep-alive connection answers the next request.
        batch = http.post("/access/v1/evaluations", json={"evaluations": [evaluation]})
        assert batch.status_code == 200, batch.text
        assert local_port(batch) == first_port
        assert http.get("/healthz").json() == {"status": "ok"}
    assert "unhandled error on POST /access/v1/evaluation" in caplog.text
    assert json.dumps(evaluation) not in caplog.text


def test_the_startup_line_names_a_postgresql_database_without_its_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[storage]\nurl = "postgresql://bridge:s3cret-pw@db.internal:5432/bridge"\n')
    line = startup_line(load_settings(config), oauth=True)
    assert "storage PostgreSQL postgresql://bridge@db.internal:5432/bridge;" in line
    assert "s3cret-pw" not in line and "SQLite" not in line
