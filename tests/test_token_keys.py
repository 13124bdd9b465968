"""Signing key rotation beside a running server: `bridge keys rotate` is run as a separate
process against the same configuration (and SQLite store) while the server keeps serving."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.oauth_fixtures import OAuthServer, oauth_server, payment, rar

FORM = {"grant_type": "client_credentials", "authorization_details": rar(payment())}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    with oauth_server(tmp_path_factory.mktemp("keys")) as running:
        yield running


def kid_of(server: OAuthServer, token: str) -> str:
    kid: str = server.verify(token)[0]["kid"]
    return kid


def rotate(server: OAuthServer, config_first: bool = True) -> str:
    """`bridge keys --config FILE rotate` (or `keys rotate --config FILE`); the new kid."""
    config = ["--config", str(server.config)]
    args = ["keys", *config, "rotate"] if config_first else ["keys", "rotate", *config]
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"new signing key (\S+?);", done.stdout)
    assert found, done.stdout
    return found.group(1)


def test_rotation_beside_a_running_server(server: OAuthServer) -> None:
    old_token = server.issued(FORM)["access_token"]
    old_kid = kid_of(server, old_token)
    before = {k["kid"] for k in server.jwks()["keys"]}
    assert old_kid in before

    new_kid = rotate(server)
    assert new_kid not in before

    # Published at once, beside the old key, each a public key only.
    keys = {k["kid"]: k for k in server.jwks()["keys"]}
    assert set(keys) == before | {new_kid}
    for key in keys.values():
        assert key["use"] == "sig" and key["alg"] == "ES256"
        assert "d" not in key

    # What the old key signed stays valid, at introspection and for offline verifiers.
    assert server.introspect(old_token)["active"] is True
    assert kid_of(server, old_token) == old_kid

    # Within a few seconds new tokens are signed with the new key.
    deadline = time.monotonic() + 6
    while True:
        token = server.issued(FORM)["access_token"]
        if kid_of(server, token) == new_kid:
            break
        assert time.monotonic() < deadline, "the server kept signing with the old key"
        time.sleep(0.25)
    assert server.introspect(token)["active"] is True
    assert server.introspect(old_token)["active"] is True
    # And the old key is still published: resource servers holding old tokens need it.
    assert old_kid in {k["kid"] for k in server.jwks()["keys"]}


def test_keys_rotate_takes_config_after_the_subcommand(server: OAuthServer) -> None:
    """Like `bridge serve|check --config` and `bridge clients add|list|remove --config`."""
    new_kid = rotate(server, config_first=False)
    assert new_kid in {k["kid"] for k in server.jwks()["keys"]}
