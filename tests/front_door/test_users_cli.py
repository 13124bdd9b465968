"""`bridge users add|list|remove|passwd`: the local accounts file, argon2id hashes only,
passwords never on the command line, a running bridge picking changes up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bridge.front_door.local_accounts import parse_users_text
from tests.conftest import REPO
from tests.front_door.helpers import (
    authorization_params,
    front_door_server,
    pkce_pair,
    sign_in,
    start,
)


def users(
    config: Path, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bridge.cli", "users", *args, "--config", str(config)]
    if password is not None:
        command.append("--password-stdin")
    return subprocess.run(
        command,
        input=(password + "\n") if password is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_list_passwd_remove(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("", encoding="utf-8")
    added = users(config, "add", "carol", password="carol-password-1")
    assert added.returncode == 0, added.stderr
    text = (tmp_path / "users.toml").read_text(encoding="utf-8")
    assert "carol-password-1" not in text and "$argon2id$" in text
    assert (tmp_path / "users.toml").stat().st_mode & 0o077 == 0
    assert users(config, "add", "carol", password="another-one-2").returncode == 1
    assert users(config, "list").stdout.split() == ["carol", "user"]
    before = parse_users_text(text, "users.toml")["carol"].password_hash
    assert users(config, "passwd", "carol", password="carol-password-2").returncode == 0
    after = parse_users_text((tmp_path / "users.toml").read_text(), "users.toml")["carol"]
    assert after.password_hash != before
    assert users(config, "passwd", "nobody", password="whatever-123").returncode == 1
    assert users(config, "remove", "carol").returncode == 0
    assert users(config, "list").stdout == ""
    assert users(config, "remove", "carol").returncode == 1


def test_the_files_own_comments_are_kept(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("", encoding="utf-8")
    note = "# Staff accounts for the lab.\n# Ask Dana before adding anyone.\n"
    (tmp_path / "users.toml").write_text(note, encoding="utf-8")
    assert users(config, "add", "erin", password="erin-password-1").returncode == 0
    assert users(config, "add", "fred", password="fred-password-1").returncode == 0
    assert users(config, "remove", "erin").returncode == 0
    text = (tmp_path / "users.toml").read_text(encoding="utf-8")
    assert text.startswith(note) and '[users."fred"]' in text and "erin" not in text


def test_short_passwords_and_bad_names_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("", encoding="utf-8")
    short = users(config, "add", "dave", password="short")
    assert short.returncode == 1 and "at least 8" in short.stderr
    bad = users(config, "add", "no spaces allowed", password="long-enough-1")
    assert bad.returncode == 1
    assert not (tmp_path / "users.toml").exists()


def test_a_running_bridge_takes_a_new_password(tmp_path: Path) -> None:
    with front_door_server(tmp_path) as server:
        config = tmp_path / "bridge.toml"
        assert users(config, "passwd", "alice", password="a-new-password").returncode == 0
        _, challenge = pkce_pair()
        with server.browser() as browser:
            interaction = start(browser, authorization_params(challenge)).headers["location"]
            assert sign_in(browser, interaction, "alice", "demo-alice").status_code == 401
            assert sign_in(browser, interaction, "alice", "a-new-password").status_code == 303


def test_bridge_check_reports_a_broken_users_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[stores.default]\npath = "%s"\n' % (REPO / "policies" / "default"), encoding="utf-8"
    )
    (tmp_path / "users.toml").write_text(
        '[users.eve]\npassword_hash = "plain-text"\n', encoding="utf-8"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert "users.toml: users.eve: password_hash" in checked.stderr
    assert "argon2id" in checked.stderr
