"""The client registry: its file format and errors, secret hashing, following the file while
the bridge runs, and `bridge clients add|list|remove` on a real file."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from bridge.oauth import clients_cli
from bridge.oauth.clients import (
    GRANT_DEFERRED,
    GRANT_TOKEN_EXCHANGE,
    ClientRegistry,
    ClientsFileError,
    hash_secret,
    parse_clients_text,
    verify_secret,
)

REPO = Path(__file__).resolve().parents[1]
HASH = hash_secret("s3cret")

GOOD = f"""\
# registry header, kept by every edit

# about alpha
[clients.alpha]
auth_method = "client_secret_basic"
secret_hash = "{HASH}"
authorization_details_types = ["customer_records"]
scopes = ["customer_records:read"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ClientsFileError) as caught:
        parse_clients_text(text, "clients.toml")
    return [str(p) for p in caught.value.problems]


# --- secrets ---------------------------------------------------------------------------


def test_secret_hash_round_trip_and_salt() -> None:
    # "!" is outside base64url: the secret cannot turn up in a hash by chance.
    first, second = hash_secret("pw!"), hash_secret("pw!")
    assert first.startswith("sha256$") and first != second  # salted
    assert verify_secret("pw!", first) and verify_secret("pw!", second)
    assert not verify_secret("pw!2", first)
    assert not verify_secret("", first)
    assert "pw!" not in first


@pytest.mark.parametrize("bad", ["", "sha256$", "plain", "md5$AAAA$AAAA", "sha256$!!$??"])
def test_malformed_hash_never_verifies(bad: str) -> None:
    assert not verify_secret("pw", bad)


# --- the file --------------------------------------------------------------------------


def test_demo_registry_loads() -> None:
    registry = ClientRegistry.load(REPO / "clients.toml")
    agent, public = registry.get("demo-agent"), registry.get("demo-public")
    assert agent is not None and public is not None
    assert verify_secret("demo-agent-secret", agent.secret_hash or "")
    assert agent.allows_grant("client_credentials") and agent.allows_grant(GRANT_DEFERRED)
    assert agent.allows_type("payment_initiation") and not agent.allows_type("other")
    assert agent.refresh_tokens and agent.token_lifetime(600) == 600
    assert public.is_public and public.require_dpop
    assert not public.allows_grant("client_credentials")
    assert public.allows_grant(GRANT_TOKEN_EXCHANGE)
    assert registry.get("nobody") is None


def test_defaults_and_helpers(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(GOOD + "token_lifetime_seconds = 120\n", encoding="utf-8")
    client = ClientRegistry.load(path).get("alpha")
    assert client is not None
    assert client.grant_types == ["client_credentials"]
    assert client.enabled and not client.require_dpop and not client.refresh_tokens
    assert client.token_lifetime(600) == 120
    assert client.allows_scope("customer_records:read")
    assert HASH not in repr(client)


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ('auth_method = "magic"', 3, "auth_method"),
        ('auth_method = "client_secret_post"', 2, "needs secret_hash"),
        ('auth_method = "client_secret_post"\nsecret_hash = "plaintext"', 2, "bridge clients add"),
        ('auth_method = "none"', 2, "require_dpop"),
        ('auth_method = "none"\nrequire_dpop = true\nsecret_hash = "x"', 2, "no secret_hash"),
        (
            'auth_method = "none"\nrequire_dpop = true\ngrant_types = ["client_credentials"]',
            2,
            "cannot use client_credentials",
        ),
        ('auth_method = "private_key_jwt"', 2, "exactly one of jwks and jwks_uri"),
        ('auth_method = "private_key_jwt"\njwks_uri = "http://x.example/jwks"', 4, "https"),
        (f'auth_method = "client_secret_basic"\nsecret_hash = "{HASH}"\ncolour = 1', 5, "colour"),
        (
            f'auth_method = "client_secret_basic"\nsecret_hash = "{HASH}"\n'
            'grant_types = ["client_credentials", "password"]',
            5,
            "grant_types.1",
        ),
        (
            f'auth_method = "client_secret_basic"\nsecret_hash = "{HASH}"\nscopes = ["a b"]',
            5,
            "scope token",
        ),
        (
            f'auth_method = "client_secret_basic"\nsecret_hash = "{HASH}"\nrefresh_tokens = true',
            2,
            "needs 'refresh_token'",
        ),
    ],
)
def test_invalid_client_tables_name_their_line(table: str, line: int, message: str) -> None:
    found = problems(f"# header\n[clients.c1]\n{table}\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"clients.toml:{line}: clients.c1"), found
    assert message in found[0]


def test_every_problem_is_reported() -> None:
    text = GOOD + '\n[clients.beta]\nauth_method = "none"\n\n[clients.gamma]\nauth_method = 1\n'
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["10", "14"], found


def test_toml_syntax_error_has_its_line() -> None:
    found = problems('[clients.a]\nauth_method = "none\n')
    assert found[0].startswith("clients.toml:2:")


def test_unknown_top_level_table_and_mismatched_client_id() -> None:
    assert "unknown table" in problems("[other]\nx = 1\n")[0]
    found = problems('[clients.a]\nclient_id = "b"\nauth_method = "none"\nrequire_dpop = true\n')
    assert found == ["clients.toml:2: client_id must match the table name"]


def test_quoted_client_ids_and_inline_jwks(tmp_path: Path) -> None:
    jwk = ECKey.generate_key("P-256", private=False).as_dict()
    text = (
        '[clients."https://agent.example/client"]\n'
        'auth_method = "private_key_jwt"\n'
        f"jwks = {{ keys = [{clients_cli._value(jwk)}] }}\n"
    )
    (client,) = parse_clients_text(text, "x")
    assert client.client_id == "https://agent.example/client"
    private = ECKey.generate_key("P-256").as_dict(private=True)
    bad = text.replace(clients_cli._value(jwk), clients_cli._value(private))
    assert "public keys only" in problems(bad)[0]
    assert problems(bad)[0].startswith("clients.toml:3:")


def test_unreadable_file() -> None:
    with pytest.raises(ClientsFileError, match="cannot read"):
        ClientRegistry.load(Path("/nonexistent/clients.toml"))


# --- following the file ----------------------------------------------------------------


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()  # make the change visible even on coarse mtime clocks
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_reload_on_change_and_keep_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(GOOD, encoding="utf-8")
    registry = ClientRegistry.load(path, check_interval=0)
    assert registry.get("beta") is None

    beta = (
        '[clients.beta]\nauth_method = "none"\nrequire_dpop = true\ngrant_types = ["refresh_token"]'
    )
    _rewrite(path, f"{GOOD}\n{beta}\n")
    assert registry.get("beta") is not None

    with caplog.at_level(logging.ERROR, logger="bridge.oauth.clients"):
        _rewrite(path, GOOD + "\n[clients.beta\n")
        assert registry.get("beta") is not None  # the last good registry stays
        assert registry.get("alpha") is not None
        registry.get("alpha")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "last good" in errors[0].getMessage()  # reported once

    path.unlink()
    assert registry.get("alpha") is not None
    _rewrite(path, GOOD.replace("alpha", "gamma"))
    assert registry.get("alpha") is None and registry.get("gamma") is not None


def test_missing_file_allowed_is_picked_up_when_created(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    registry = ClientRegistry.load(path, check_interval=0, missing_ok=True)
    assert registry.get("alpha") is None and registry.clients() == []
    path.write_text(GOOD, encoding="utf-8")
    assert registry.get("alpha") is not None


def test_checks_the_file_at_most_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(GOOD, encoding="utf-8")
    registry = ClientRegistry.load(path, check_interval=0.3)
    _rewrite(path, GOOD.replace("alpha", "gamma"))
    assert registry.get("alpha") is not None  # not looked at yet
    time.sleep(0.35)
    assert registry.get("gamma") is not None


# --- the CLI ---------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    profiles = json.dumps(str(REPO / "profiles"))
    path.write_text(
        f'[oauth]\nclients_file = "reg/clients.toml"\nprofiles_dir = {profiles}\n', encoding="utf-8"
    )
    return path


def cli(config: Path, *argv: str) -> int:
    return clients_cli.main([*argv, "--config", str(config)])


def test_cli_add_list_remove_round_trip(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry_file = config.parent / "reg" / "clients.toml"
    argv = ["add", "agent-1", "--auth-method", "client_secret_basic", "--grant-type", "deferred"]
    argv += ["--type", "customer_records", "--scope", "customer_records:read", "--refresh-tokens"]
    assert cli(config, *argv, "--description", 'say "hi"\n😀', "--lifetime", "300") == 0
    out = capsys.readouterr().out
    secret = next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("client_secret"))
    assert out.count(secret) == 1 and "not stored" in out
    text = registry_file.read_text(encoding="utf-8")
    assert secret not in text and text.startswith("# The OAuth client registry")

    client = ClientRegistry.load(registry_file).get("agent-1")
    assert client is not None and verify_secret(secret, client.secret_hash or "")
    assert client.grant_types == [GRANT_DEFERRED, "refresh_token"]
    assert client.description == 'say "hi"\n😀' and client.token_lifetime_seconds == 300

    assert cli(config, "add", "agent-1", "--auth-method", "client_secret_post") == 1
    assert "already registered" in capsys.readouterr().err

    jwks = {"keys": [ECKey.generate_key("P-256", private=False).as_dict()]}
    (config.parent / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    jwks_args = ["--jwks-file", str(config.parent / "jwks.json")]
    assert cli(config, "add", "signer", "--auth-method", "private_key_jwt", *jwks_args) == 0
    assert "client_secret" not in capsys.readouterr().out
    assert cli(config, "add", "phone", "--auth-method", "none", "--dpop", "--grant-type",
               "token-exchange") == 0  # fmt: skip
    capsys.readouterr()

    assert cli(config, "list") == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("agent-1", "signer", "phone", "deferred"))
    assert "sha256$" not in listing

    assert cli(config, "remove", "agent-1") == 0
    assert cli(config, "remove", "agent-1") == 1
    remaining = ClientRegistry.load(registry_file)
    assert [c.client_id for c in remaining.clients()] == ["phone", "signer"]
    assert "sha256$" not in registry_file.read_text(encoding="utf-8")


def test_cli_keeps_comments_and_refuses_invalid_clients(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_file = config.parent / "reg" / "clients.toml"
    registry_file.parent.mkdir()
    registry_file.write_text(GOOD, encoding="utf-8")
    assert cli(config, "add", "pub", "--auth-method", "none") == 1  # needs --dpop
    assert "require_dpop" in capsys.readouterr().err
    assert cli(config, "add", "bad id", "--auth-method", "client_secret_post") == 1
    assert registry_file.read_text(encoding="utf-8") == GOOD

    assert cli(config, "add", "beta", "--auth-method", "client_secret_post") == 0
    assert cli(config, "remove", "alpha") == 0
    text = registry_file.read_text(encoding="utf-8")
    assert "[clients.alpha]" not in text and "[clients.beta]" in text
    assert "registry header" in text
    assert "about alpha" not in text  # the comment just above alpha went with it


def test_cli_refuses_to_edit_a_broken_file(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_file = config.parent / "reg" / "clients.toml"
    registry_file.parent.mkdir()
    registry_file.write_text("[clients.a]\nauth_method = 3\n", encoding="utf-8")
    assert cli(config, "add", "b", "--auth-method", "client_secret_post") == 1
    assert "clients.toml:2:" in capsys.readouterr().err
    assert registry_file.read_text(encoding="utf-8") == "[clients.a]\nauth_method = 3\n"


def test_cli_list_without_a_file(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(config, "list") == 0
    assert "no clients" in capsys.readouterr().out
