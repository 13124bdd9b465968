"""The SQLite store's schema and files: numbered migrations recorded in `schema_version`,
`bridge db status|migrate`, a database from a newer bridge refused, a database that needs
migrating refused when the deployment migrates separately; the database, its `-wal` and
`-shm` files made 0600 and a folder the bridge makes 0700; the key-encryption key from the
environment, and the warning when its file sits beside the database."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.jose.sealing import (
    KEK_ENVIRONMENT,
    KeyEncryptionKeyError,
    kek_beside,
    load_key_encryption_key,
)
from bridge.settings import load_settings
from bridge.shared import Shared
from bridge.store.sqlite import SQLiteStore, migrations
from bridge.store.sqlite.connection import SchemaBehind
from tests.conftest import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_records_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    for _ in range(2):  # the second open finds nothing to do
        store = SQLiteStore(path)
        await store.open()
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]


async def test_a_database_from_a_newer_bridge_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', 0)",
            (migrations.LATEST + 1,),
        )
        db.commit()
    with pytest.raises(migrations.SchemaTooNew, match="this bridge knows up to"):
        await SQLiteStore(path).open()


async def test_without_migrate_on_start_a_behind_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with pytest.raises(SchemaBehind, match="bridge db migrate"):
        await SQLiteStore(path, migrate=False).open()


def bridge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_bridge_db_status_and_migrate(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[storage]\npath = "state/db.sqlite3"\nmigrate_on_start = false\n')
    status = bridge("db", "status", "--config", str(config), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"schema version 0 (this bridge knows {migrations.LATEST})" in status.stdout
    assert f"pending {migrations.LATEST}:" in status.stdout
    assert not (tmp_path / "state").exists()  # status changes nothing

    migrated = bridge("db", "migrate", "--config", str(config), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {migrations.LATEST} (up to date)" in migrated.stdout
    status = bridge("db", "status", "--config", str(config), cwd=tmp_path)
    assert "pending" not in status.stdout


async def test_database_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "made-by-the-bridge"
    path = folder / "db.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.enqueue("kind", b"payload", 0.0)  # a write: the -wal and -shm exist now
        assert mode(folder) == 0o700
        for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
            assert mode(folder / name) == 0o600, name
    finally:
        await store.close()


async def test_a_database_readable_by_others_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="bridge.store"):
        store = SQLiteStore(path)
        await store.open()
        await store.close()
    assert "readable by others (mode 644)" in caplog.text


def test_the_key_encryption_key_comes_from_the_environment(tmp_path: Path) -> None:
    key = bytes(range(32))
    environ = {KEK_ENVIRONMENT: base64.b64encode(key).decode()}
    file = tmp_path / "never-made.kek"
    assert load_key_encryption_key(file, environ) == key
    assert not file.exists()
    assert not kek_beside(file, tmp_path / "db.sqlite3", environ)
    with pytest.raises(KeyEncryptionKeyError, match="must be 32 bytes"):
        load_key_encryption_key(file, {KEK_ENVIRONMENT: base64.b64encode(b"short").decode()})
    with pytest.raises(KeyEncryptionKeyError, match="not base64"):
        load_key_encryption_key(file, {KEK_ENVIRONMENT: "%%%"})


def test_a_key_encryption_key_file_is_made_private(tmp_path: Path) -> None:
    file = tmp_path / "keys" / "bridge.kek"
    first = load_key_encryption_key(file, {})
    assert len(first) == 32 and mode(file) == 0o600 and mode(file.parent) == 0o700
    assert load_key_encryption_key(file, {}) == first


def test_a_key_file_beside_the_database_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEK_ENVIRONMENT, raising=False)
    beside = tmp_path / "beside.toml"
    beside.write_text(
        '[storage]\npath = "var/db.sqlite3"\n[oauth]\nkey_encryption_key_file = "var/k.kek"\n'
    )
    apart = tmp_path / "apart.toml"
    apart.write_text(
        '[storage]\npath = "var/db.sqlite3"\n[oauth]\nkey_encryption_key_file = "keys/k.kek"\n'
    )
    with caplog.at_level(logging.WARNING, logger="bridge"):
        Shared.from_settings(load_settings(apart))
        assert "sits beside the database" not in caplog.text
        Shared.from_settings(load_settings(beside))
    assert "sits beside the database" in caplog.text
    assert "BRIDGE_KEY_ENCRYPTION_KEY" in caplog.text
