"""The PostgreSQL fixture gives a working private server: async psycopg, locks, own databases."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.postgres import PostgresDatabase, PostgresServer

pytest_plugins = ["tests.support.plugin"]


async def test_async_connection_and_skip_locked(postgres_database: PostgresDatabase) -> None:
    """Two workers claiming queue rows: SKIP LOCKED hands each a different row, never blocks."""
    async with await psycopg.AsyncConnection.connect(postgres_database.url) as setup:
        await setup.execute("CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)")
        await setup.execute("INSERT INTO jobs VALUES (1, 'queued'), (2, 'queued')")
        await setup.commit()

    claim = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    async with (
        await psycopg.AsyncConnection.connect(postgres_database.url) as first,
        await psycopg.AsyncConnection.connect(postgres_database.url) as second,
    ):
        first_row = await (await first.execute(claim)).fetchone()
        second_row = await (await second.execute(claim)).fetchone()
        assert first_row == (1,)
        assert second_row == (2,)
        # Both rows are now locked: a third claim finds nothing rather than waiting.
        async with await psycopg.AsyncConnection.connect(postgres_database.url) as third:
            assert await (await third.execute(claim)).fetchone() is None
            # Without SKIP LOCKED, NOWAIT proves the lock is really held.
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await third.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT")
        await first.rollback()
        await second.rollback()


async def test_async_pool(postgres_database: PostgresDatabase) -> None:
    async with (
        AsyncConnectionPool(postgres_database.url, min_size=1, max_size=2, open=False) as pool,
        pool.connection() as conn,
    ):
        row = await (await conn.execute("SELECT current_database()")).fetchone()
    assert row == (postgres_database.database,)


def test_server_listens_on_loopback_with_a_password(postgres: PostgresServer) -> None:
    assert postgres.host == "127.0.0.1"
    assert postgres.url == (
        f"postgresql://bridge:{postgres.password}@127.0.0.1:{postgres.port}/bridge"
    )
    with psycopg.connect(postgres.url) as conn:
        row = conn.execute(
            "SELECT current_user, inet_server_addr()::text, current_setting('fsync')"
        ).fetchone()
    assert row == ("bridge", "127.0.0.1/32", "off")
    wrong = postgres.url.replace(postgres.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()


def test_each_module_gets_its_own_database(
    postgres: PostgresServer, postgres_database: PostgresDatabase
) -> None:
    assert postgres_database.database.startswith("test_support_postgres_")
    assert postgres_database.database != postgres.database
    other = postgres.create_database("other")
    try:
        with psycopg.connect(other.url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
        assert tables == (0,)
    finally:
        postgres.drop_database(other.database)
