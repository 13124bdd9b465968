"""A private PostgreSQL server for the test session: real SQL, real locks, thrown away after.

Why a private server instead of the machine's own cluster: CI starts from a fresh clone with
nothing running, a developer's machine may have no cluster or one with other data in it, and
several worktrees run their suites at once. So the fixture finds the PostgreSQL binaries
(installing Debian's `postgresql` when they are missing), runs `initdb` into a temporary folder,
and starts a server that listens only on 127.0.0.1 on a free port, with its unix socket inside
that folder. Durability settings are off (fsync, synchronous_commit): a test database is never
recovered after a crash, and that makes set-up and every commit fast.

`initdb` and `postgres` refuse to run as root. Tests run as root on CI, so the server runs as
an unprivileged user: the `postgres` system user Debian's package creates, or a dedicated one
created with `useradd` when that is absent.

Use in tests:

    def test_something(postgres_database: PostgresDatabase) -> None:
        with psycopg.connect(postgres_database.url) as conn:
            conn.execute("SELECT 1")
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support._common import (
    ServiceSetupError,
    apt_install,
    file_tail,
    free_loopback_port,
    run,
    tail,
)

WHAT = "PostgreSQL test server"
# The user that owns and runs the server when the tests run as root.
DEDICATED_USER = "bridge-test-pg"
# Debian puts each major version's server binaries here, off PATH.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
ROLE = "bridge"
DATABASE = "bridge"
START_TIMEOUT = 60


@dataclass(frozen=True)
class PostgresDatabase:
    """How to reach one database as the test role: the parts, and a libpq URL."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """`postgresql://user:password@127.0.0.1:port/db`, for psycopg and the bridge's config."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class PostgresServer(PostgresDatabase):
    """The session's server; its own fields reach the default database `bridge`.

    `create_database` gives a test module a database of its own, so modules never see each
    other's tables or rows; the test role owns it and can create and drop what it likes.
    """

    data_dir: Path
    socket_dir: Path
    bin_dir: Path

    def create_database(self, prefix: str = "test") -> PostgresDatabase:
        """A new, empty database owned by the test role, named `<prefix>_<random>`."""
        name = f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())[:40]}_{secrets.token_hex(4)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return PostgresDatabase(self.host, self.port, self.user, self.password, name)

    def drop_database(self, name: str) -> None:
        """Drop a database made by `create_database`, closing any connection still open."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _version_key(path: Path) -> tuple[int, ...]:
    digits = re.findall(r"\d+", path.parent.name)
    return tuple(int(d) for d in digits)


def find_bin_dir() -> Path | None:
    """The folder holding `initdb`, `pg_ctl` and `postgres`: from PATH, else Debian's layout.

    The newest major version wins when several are installed.
    """
    initdb = shutil.which("initdb")
    if initdb is not None:
        folder = Path(initdb).resolve().parent
        if (folder / "pg_ctl").exists() and (folder / "postgres").exists():
            return folder
    candidates = [
        folder
        for folder in sorted(map(Path, glob.glob(DEBIAN_BIN_GLOB)), key=_version_key, reverse=True)
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres"))
    ]
    return candidates[0] if candidates else None


def _stop_package_clusters() -> None:
    """Stop and set to manual the cluster Debian's package creates and starts on install.

    Our server does not need it, and it would hold port 5432 and memory for nothing. Only
    called right after this fixture installed the package, so it never stops a cluster that
    someone set up on purpose.
    """
    if shutil.which("pg_lsclusters") is None:
        return
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        version, name, status = fields[0], fields[1], fields[3]
        start_conf = Path("/etc/postgresql") / version / name / "start.conf"
        with contextlib.suppress(OSError):
            start_conf.write_text("manual\n", encoding="utf-8")
        if status == "online":
            subprocess.run(
                ["pg_ctlcluster", version, name, "stop", "-m", "fast"],
                capture_output=True,
                check=False,
            )


def ensure_binaries() -> Path:
    """The PostgreSQL server binaries' folder, installing Debian's `postgresql` if need be."""
    found = find_bin_dir()
    if found is not None:
        return found
    apt_install(["postgresql"], why=WHAT)
    _stop_package_clusters()
    found = find_bin_dir()
    if found is None:
        raise ServiceSetupError(
            f"{WHAT}: `postgresql` is installed but no initdb/pg_ctl/postgres was found "
            f"on PATH or in {DEBIAN_BIN_GLOB}"
        )
    return found


def _server_user() -> str | None:
    """The unprivileged user to run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, DEDICATED_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DEDICATED_USER],
        what=f"{WHAT}: useradd {DEDICATED_USER} (initdb refuses to run as root)",
    )
    return DEDICATED_USER


def _as_user(user: str | None, command: Sequence[str | os.PathLike[str]]) -> list[str]:
    parts = [os.fspath(part) for part in command]
    if user is None:
        return parts
    return ["runuser", "-u", user, "--", *parts]


def _configure(data_dir: Path, socket_dir: Path, port: int) -> None:
    """Settings for a throw-away test server, appended to the generated postgresql.conf."""
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        # A test cluster is never recovered after a crash: skip the disk flushes.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        # Enough for a pool per test plus a few direct connections; the default is 100.
        "max_connections": "50",
        "shared_buffers": "64MB",
        "log_min_messages": "warning",
        "timezone": "'UTC'",
    }
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# Test server settings\n" + lines)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a private PostgreSQL server; yield how to reach it; stop it and delete its files.

    The role `bridge` (with a random password, allowed to create databases) owns the
    database `bridge`. Clients connect over TCP on 127.0.0.1 with that password (SCRAM);
    the superuser is reachable only through the unix socket in the private folder.
    """
    bin_dir = ensure_binaries()
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
    data_dir = base / "data"
    log_file = base / "server.log"
    started = False
    try:
        if user is not None:
            # mkdtemp makes the folder 0700 for root; the server's user must own it.
            shutil.chown(base, user=user)
            run(
                _as_user(user, ["test", "-w", base]),
                what=f"{WHAT}: checking that user {user} can write {base} (if not, set "
                "TMPDIR to a folder every user can reach)",
            )
        run(
            _as_user(
                user,
                [
                    bin_dir / "initdb",
                    "--pgdata",
                    data_dir,
                    "--username",
                    SUPERUSER,
                    "--auth-local",
                    "trust",
                    "--auth-host",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            ),
            what=f"{WHAT}: initdb",
            cwd=base,
        )
        port = _start(bin_dir, user, data_dir, base, log_file)
        started = True
        password = secrets.token_urlsafe(18)
        admin = f"host={base} port={port} user={SUPERUSER} dbname=postgres"
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                        sql.Identifier(ROLE), sql.Literal(password)
                    )
                )
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(DATABASE), sql.Identifier(ROLE)
                    )
                )
        except psycopg.Error as exc:
            raise ServiceSetupError(
                f"{WHAT}: creating the test role and database failed: {exc}\n{file_tail(log_file)}"
            ) from exc
        yield PostgresServer(
            host="127.0.0.1",
            port=port,
            user=ROLE,
            password=password,
            database=DATABASE,
            data_dir=data_dir,
            socket_dir=base,
            bin_dir=bin_dir,
        )
    finally:
        if started:
            subprocess.run(
                _as_user(user, [bin_dir / "pg_ctl", "stop", "-D", data_dir, "-m", "fast", "-w"]),
                capture_output=True,
                cwd=base,
                check=False,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


def _start(bin_dir: Path, user: str | None, data_dir: Path, base: Path, log_file: Path) -> int:
    """Start the server on a free port; retry with another port if that one got taken."""
    for _attempt in range(3):
        port = free_loopback_port()
        _configure(data_dir, base, port)
        result = subprocess.run(
            _as_user(
                user,
                [
                    bin_dir / "pg_ctl",
                    "start",
                    "-D",
                    data_dir,
                    "-l",
                    log_file,
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                ],
            ),
            capture_output=True,
            text=True,
            cwd=base,
            check=False,
            timeout=START_TIMEOUT + 30,
        )
        if result.returncode == 0:
            return port
        log = file_tail(log_file)
        if "could not bind" not in log and "already in use" not in log:
            raise ServiceSetupError(
                f"{WHAT}: pg_ctl start failed:\n{tail(result.stdout + result.stderr)}\n{log}"
            )
    raise ServiceSetupError(f"{WHAT}: no free port could be bound:\n{file_tail(log_file)}")


@pytest.fixture(scope="session", name="postgres")
def _postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use, stopped at the session's end)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module", name="postgres_database")
def _postgres_database(
    postgres: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[PostgresDatabase]:
    """A fresh database for the requesting test module, dropped after its last test."""
    database = postgres.create_database(request.module.__name__.rsplit(".", 1)[-1])
    try:
        yield database
    finally:
        postgres.drop_database(database.database)
