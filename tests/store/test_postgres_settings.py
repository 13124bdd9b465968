"""Choosing PostgreSQL in the configuration, and its password: `storage.url` selects it,
`storage.path` keeps SQLite; both at once are refused, and so are PostgreSQL options without
a URL. The password comes from the URL, `storage.password_file` or
`BRIDGE_DATABASE_PASSWORD`, and appears in no message, no error and no `repr`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bridge.settings import ConfigError, Settings, load_settings
from bridge.store.backends import describe, store_for
from bridge.store.postgres import DatabaseUnavailable, PostgresStore, Target
from bridge.store.postgres.connection import PASSWORD_ENVIRONMENT
from bridge.store.sqlite import SQLiteStore
from tests.conftest import free_port
from tests.support.postgres import PostgresDatabase

pytest_plugins = ["tests.support.plugin"]

SECRET = "s3cr3t-pa55word-never-shown"


def config(tmp_path: Path, storage: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text("[storage]\n" + storage + "\n")
    return path


def problems(tmp_path: Path, storage: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_settings(config(tmp_path, storage))
    return [str(problem) for problem in refused.value.problems]


def without_password(database: PostgresDatabase) -> str:
    return f"postgresql://{database.user}@{database.host}:{database.port}/{database.database}"


def test_the_url_selects_postgresql_and_the_default_is_sqlite(tmp_path: Path) -> None:
    default = load_settings(config(tmp_path, ""))
    assert isinstance(store_for(default), SQLiteStore)
    assert describe(default) == str(tmp_path / "var" / "bridge.sqlite3")
    url = f"postgresql://bridge:{SECRET}@db.example.com:5433/bridge?sslmode=require"
    chosen = load_settings(config(tmp_path, f'url = "{url}"\npool_max_size = 3'))
    store = store_for(chosen)
    assert isinstance(store, PostgresStore)
    assert store.bounds.max_size == 3 and store.bounds.min_size == 1
    assert describe(chosen) == "postgresql://bridge@db.example.com:5433/bridge"
    for shown in (repr(chosen), str(chosen), repr(store), repr(store.target), str(chosen.storage)):
        assert SECRET not in shown
    assert "sslmode=require" in store.target.conninfo and SECRET not in store.target.conninfo


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            f'url = "postgresql://u:{SECRET}@h/db"\npath = "var/x.sqlite3"',
            "give `url` (PostgreSQL) or `path` (SQLite), not both",
        ),
        (f'url = "mysql://u:{SECRET}@h/db"', "url must be a postgresql:// URL"),
        ('password_file = "pw"', "password_file: only with `url` (PostgreSQL)"),
        ("pool_max_size = 4", "pool_max_size: only with `url` (PostgreSQL)"),
        (
            f'url = "postgresql://u:{SECRET}@h/db"\npassword_file = "pw"',
            "the url carries a password",
        ),
        (
            'url = "postgresql://u@h/db"\npool_min_size = 5\npool_max_size = 2',
            "pool_min_size is larger than pool_max_size",
        ),
    ],
)
def test_mistakes_are_refused_without_showing_the_url(
    tmp_path: Path, storage: str, message: str
) -> None:
    found = problems(tmp_path, storage)
    assert len(found) == 1 and message in found[0], found
    assert found[0].startswith(f"{tmp_path / 'bridge.toml'}:1: storage:")
    assert SECRET not in found[0]


def test_a_validation_error_echoes_no_input() -> None:
    with pytest.raises(ValueError) as raw:
        Settings.model_validate({"storage": {"url": f"postgresql://u:{SECRET}@h/db", "path": "x"}})
    assert "not both" in str(raw.value) and SECRET not in str(raw.value)


def test_the_password_from_the_url_a_file_or_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "db.password"
    file.write_text("from-the-file\nignored second line\n")
    file.chmod(0o600)
    environ = {PASSWORD_ENVIRONMENT: "from-the-environment"}
    assert Target.from_url("postgresql://u:from-the-url@h/db", environ=environ).password == (
        "from-the-url"
    )
    assert (
        Target.from_url("postgresql://u@h/db", password_file=file, environ=environ).password
        == "from-the-file"
    )
    assert Target.from_url("postgresql://u@h/db", environ=environ).password == (
        "from-the-environment"
    )
    assert Target.from_url("postgresql://u@h/db", environ={}).password is None
    # A relative file is found beside the configuration.
    settings = load_settings(
        config(tmp_path, 'url = "postgresql://u@h/db"\npassword_file = "db.password"')
    )
    store = store_for(settings)
    assert isinstance(store, PostgresStore) and store.target.password == "from-the-file"


def test_a_bad_password_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    open_file = tmp_path / "open.password"
    open_file.write_text(SECRET)
    open_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="bridge.store"):
        assert Target.from_url("postgresql://u@h/db", password_file=open_file).password == SECRET
    assert "readable by others (mode 644)" in caplog.text and SECRET not in caplog.text
    empty = tmp_path / "empty.password"
    empty.write_text("\n")
    with pytest.raises(DatabaseUnavailable, match="is empty"):
        Target.from_url("postgresql://u@h/db", password_file=empty)
    with pytest.raises(DatabaseUnavailable, match=r"cannot read storage\.password_file"):
        Target.from_url("postgresql://u@h/db", password_file=tmp_path / "missing")


async def test_a_refused_password_or_no_server_is_named_without_the_password(
    postgres_database: PostgresDatabase,
) -> None:
    database = postgres_database
    wrong = Target.from_url(
        f"postgresql://{database.user}:{SECRET}@{database.host}:{database.port}/{database.database}"
    )
    with pytest.raises(DatabaseUnavailable) as refused:
        await PostgresStore(wrong).open()
    message = str(refused.value)
    assert message.startswith(f"cannot connect to {without_password(database)}: ")
    assert "password authentication failed" in message and SECRET not in message

    nobody = Target.from_url(f"postgresql://u:{SECRET}@127.0.0.1:{free_port()}/db")
    with pytest.raises(DatabaseUnavailable, match="Connection refused") as absent:
        await PostgresStore(nobody).open()
    assert SECRET not in str(absent.value)


async def test_a_password_file_opens_the_database(
    postgres_database: PostgresDatabase, tmp_path: Path
) -> None:
    file = tmp_path / "db.password"
    file.write_text(postgres_database.password + "\n")
    os.chmod(file, 0o600)
    settings = load_settings(
        config(
            tmp_path,
            f'url = "{without_password(postgres_database)}"\npassword_file = "db.password"',
        )
    )
    store = store_for(settings)
    await store.open()
    try:
        await store.ping()
        assert await store.use_once("n", "v", 2e9) is True
    finally:
        await store.close()
