"""`/readyz` includes the database: 503 with the reason while the PostgreSQL database does not
answer the bridge, 200 again once it does; the reason names the database without its
password. SQLite stores are reported ready as well."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from bridge.settings import load_settings
from tests.conftest import serve
from tests.oauth_fixtures import server_config
from tests.replicas.cluster import wait_for
from tests.support.postgres import SUPERUSER, PostgresDatabase, PostgresServer

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture
def superuser(postgres: PostgresServer) -> Iterator[psycopg.Connection[object]]:
    """The server's superuser, through its private unix socket (not limited by CONNECTION
    LIMIT)."""
    dsn = f"host={postgres.socket_dir} port={postgres.port} user={SUPERUSER} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def test_readyz_reports_a_database_that_does_not_answer(
    tmp_path: Path,
    postgres_database: PostgresDatabase,
    superuser: psycopg.Connection[object],
) -> None:
    database = postgres_database
    config = server_config(tmp_path, storage=f'url = "{database.url}"\npool_max_size = 2')
    name = sql.Identifier(database.database)
    with serve(load_settings(config)) as server, httpx.Client(base_url=server.url) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["database"] == {"ready": True}

        # The database stops taking the bridge's connections, and drops the ones it had.
        superuser.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 0").format(name))
        superuser.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database.database,),
        )
        try:
            for _ in range(2):  # the dropped connection, then no connection at all
                refused = http.get("/readyz")
                assert refused.status_code == 503, refused.text
                body = refused.json()
                assert body["status"] == "not ready"
                assert body["stores"]["default"]["ready"] is True  # the policies are fine
                assert body["database"]["ready"] is False
                error = body["database"]["error"]
                where = f"{database.user}@{database.host}:{database.port}/{database.database}"
                assert error.startswith(f"the database does not answer: postgresql://{where}: ")
                assert database.password not in refused.text
            # By now the pool has no connection left, and says what a new one is told.
            assert "too many connections for database" in error
            assert http.get("/healthz").status_code == 200  # alive, only not ready
        finally:
            superuser.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT -1").format(name))
        wait_for("the pool to reconnect", lambda: http.get("/readyz").status_code == 200, 60)
        assert http.get("/readyz").json()["database"] == {"ready": True}


def test_readyz_includes_a_sqlite_database(tmp_path: Path) -> None:
    with (
        serve(load_settings(server_config(tmp_path))) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == {"ready": True}
