"""The databases the benchmarks run the bridge on: a SQLite file, or a database of a private
PostgreSQL server (the tests' own, `tests.support.postgres.postgres_server`: loopback only,
thrown away after the run), read and filled from outside the bridge through one interface.

The test server runs with `fsync = off`; each benchmark database turns `synchronous_commit`
back on, so a commit waits for its WAL to be written (not flushed), as SQLite's WAL mode with
`synchronous = NORMAL` (the bridge's setting) waits for its write and flushes only at
checkpoints. Neither side pays a disk flush per commit, so the two compare like for like.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.support.postgres import PostgresServer, postgres_server

BACKENDS = ("sqlite", "postgres")


@dataclass
class Database:
    """One benchmark database: how the bridge's configuration names it, and access to it."""

    kind: str
    path: Path | None = None  # SQLite
    url: str | None = None  # PostgreSQL, with its password (a throw-away server)

    @property
    def storage(self) -> str:
        """The body of the `[storage]` table."""
        if self.url is not None:
            return f"url = {json.dumps(self.url)}\npool_max_size = 10"
        return f"path = {json.dumps(str(self.path))}"

    def rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of `query` (with `?` marks), through a connection of its own."""
        if self.url is not None:
            with psycopg.connect(self.url, autocommit=True) as conn:
                cursor = conn.execute(query.replace("?", "%s"), tuple(args))
                return cursor.fetchall() if cursor.description else []
        assert self.path is not None
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            return db.execute(query, tuple(args)).fetchall()

    def first_row(self, table: str) -> dict[str, Any]:
        """The first row of `table`, by column name."""
        names: list[str]
        if self.url is not None:
            with psycopg.connect(self.url, autocommit=True) as conn:
                query = sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table))
                cursor = conn.execute(query)
                names = [d.name for d in cursor.description or []]
                row = cursor.fetchone()
        else:
            assert self.path is not None
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                found = db.execute(f"SELECT * FROM {table} LIMIT 1")
                names = [d[0] for d in found.description]
                row = found.fetchone()
        if row is None:
            raise RuntimeError(f"no row in {table}")
        return dict(zip(names, row, strict=True))

    def insert(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Rows into tables, in one transaction (COPY on PostgreSQL)."""
        if self.url is not None:
            with psycopg.connect(self.url) as conn, conn.cursor() as cursor:
                for table, rows in tables.items():
                    columns = list(rows[0])
                    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                    )
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row([row[c] for c in columns])
                conn.commit()
                conn.autocommit = True
                conn.execute("ANALYZE")
            return
        assert self.path is not None
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            for table, rows in tables.items():
                columns = list(rows[0])
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})",
                    rows,
                )
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size_mb(self) -> float:
        if self.url is not None:
            ((size,),) = self.rows("SELECT pg_database_size(current_database())")
            return float(size) / 1e6
        assert self.path is not None
        return self.path.stat().st_size / 1e6

    def plan(self, statement: str, args: Sequence[Any]) -> str:
        """How the database would run `statement`, on one line."""
        if self.url is not None:
            lines = [row[0] for row in self.rows("EXPLAIN " + statement, args)]
            nodes = [line for line in lines if "->" in line or not line.startswith(" ")]
            return "; ".join(n.split("  (cost")[0].strip().removeprefix("->  ") for n in nodes)
        return "; ".join(row[3] for row in self.rows("EXPLAIN QUERY PLAN " + statement, args))


@contextmanager
def server(kind: str) -> Iterator[PostgresServer | None]:
    """A private PostgreSQL server for `postgres`; nothing for `sqlite`."""
    if kind == "sqlite":
        yield None
        return
    with postgres_server() as running:
        yield running


def database(kind: str, folder: Path, name: str, postgres: PostgresServer | None) -> Database:
    """A new, empty database of `kind` (the bridge creates its tables when it starts)."""
    if kind == "sqlite":
        return Database(kind, path=folder / "bridge.sqlite3")
    assert postgres is not None
    made = postgres.create_database(name)
    with psycopg.connect(made.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(
                sql.Identifier(made.database)
            )
        )
    return Database(kind, url=made.url)
