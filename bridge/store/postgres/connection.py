"""The PostgreSQL plumbing every table group of the shared store uses: where the database is
(with its password kept out of every message), the connection pool, transactions.

**Isolation: read committed, with explicit row locks.** Every state change of the contract is
one of three shapes, each exact under PostgreSQL's default isolation level:

- a single conditional statement (`UPDATE … WHERE … AND status = %s`, `INSERT … ON CONFLICT
  … DO UPDATE … WHERE expired`): when two transactions meet on a row, the second waits for the
  first and then evaluates its condition again on the row as the first left it, so of
  concurrent compare-and-sets exactly one matches (redemption, the task CAS, the replay
  cache, binding jtis, idempotency keys);
- read, decide in Python, write: the row is read `FOR UPDATE` first, so the decision is made
  on the latest committed row and nobody changes it before the transaction ends (polls,
  resolutions, cancellations, refresh token use);
- leases: due rows are claimed `FOR UPDATE SKIP LOCKED`, so replicas claiming at once take
  disjoint rows and never wait for each other (the outbox, remote status reads, expiry).

What no row lock covers is taken as a transaction-scoped advisory lock: "does another live
deferral still wait on this access request?" is asked holding a lock on the request's id, so
two deferrals of one request ending at once in two replicas cannot both believe the other is
still waiting. Rotations lock the signing key table against each other (not against reads).
Serializable isolation would give the same outcomes, but every transaction would then need a
retry loop for serialization failures, which a burst of polls on one code would provoke; with
these locks nothing is ever retried. No transaction takes a row lock while it holds an
advisory lock, and advisory locks are taken in sorted order, so none can deadlock.

**The pool.** `psycopg_pool.AsyncConnectionPool`, between `storage.pool_min_size` and
`storage.pool_max_size` connections; a request that finds every connection busy waits up to
`storage.pool_timeout_seconds`, then fails. Connections are in autocommit mode: a statement
on its own is its own transaction, and the changes that need several statements say so with
`transaction()`. A connection that broke (the server restarted) is replaced when it is
returned. Statements are parameterised (`%s`), never formatted with values; psycopg prepares
a statement on the server once a connection has run it a few times, so the hot lookups
(codes, replay values, tokens) are planned once per connection.

The password comes from the URL, `storage.password_file` or `BRIDGE_DATABASE_PASSWORD`, in
that order (else libpq's own `PGPASSWORD` or `~/.pgpass`). It never appears in a log line,
an error or a `repr`: every message names the database as `postgresql://USER@HOST:PORT/DB`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...secret_files import SecretFileUnusable, read_secret_file
from ..schema import SchemaBehind
from . import migrations

log = logging.getLogger("bridge.store")

PASSWORD_ENVIRONMENT = "BRIDGE_DATABASE_PASSWORD"
# How long `/readyz` waits for a connection and an answer.
PING_TIMEOUT_SECONDS = 2.0

Connection = psycopg.AsyncConnection[Any]

__all__ = [
    "PASSWORD_ENVIRONMENT",
    "Connection",
    "DatabaseUnavailable",
    "PoolBounds",
    "PostgresBase",
    "SchemaBehind",
    "Target",
]


# The first key of the advisory locks on refresh token families (the second: the id's hash):
# a rotation, a family's revocation and a subject's revocation take it.
FAMILY_LOCK = 0x72667273  # "rfrs"


async def lock_family(conn: Connection, family_id: str) -> None:
    """A refresh token family's advisory lock, always taken before any of its rows' locks."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", (FAMILY_LOCK, family_id)
    )


async def revoke_family(conn: Connection, family_id: str, now: float) -> int:
    """Revoke the family's live refresh tokens, inside a transaction holding its lock; how
    many were live."""
    cursor = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
        (now, family_id),
    )
    return cursor.rowcount


class DatabaseUnavailable(Exception):
    """The database cannot be reached, or refused the bridge (the message names it without
    its password)."""


@dataclass(frozen=True)
class Target:
    """Where the database is: a libpq connection string without the password, and the
    password apart (never in `repr`)."""

    conninfo: str
    display: str  # postgresql://USER@HOST:PORT/DB, for messages
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        password_file: Path | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Target:
        """The database of `url` (`postgresql://USER@HOST:PORT/DB`); its password from the
        URL, else `password_file`, else `BRIDGE_DATABASE_PASSWORD`."""
        try:
            params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            # libpq's message may quote the URL, password and all.
            raise ValueError("storage.url is not a valid PostgreSQL URL") from None
        password = params.pop("password", None)
        if password is None and password_file is not None:
            password = _read_password(password_file)
        if password is None:
            password = environ.get(PASSWORD_ENVIRONMENT) or None
        user = str(params.get("user") or "")
        where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
        display = f"postgresql://{user + '@' if user else ''}{where}/{params.get('dbname') or ''}"
        return cls(
            make_conninfo("", **params), display, None if password is None else str(password)
        )

    def redact(self, text: str) -> str:
        """`text` (a driver's message) with the password blotted out, should it be there."""
        return text.replace(self.password, "***") if self.password else text

    def connect_kwargs(self, timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq wants whole seconds; 0 would mean "wait forever".
            "connect_timeout": max(1, math.ceil(timeout)),
            "application_name": "authzen-bridge",
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


@dataclass(frozen=True)
class PoolBounds:
    min_size: int = 1
    max_size: int = 10
    timeout_seconds: float = 10.0


def _read_password(path: Path) -> str:
    try:
        return read_secret_file(path, "storage.password_file")
    except SecretFileUnusable as exc:
        raise DatabaseUnavailable(str(exc)) from None


class PostgresBase:
    def __init__(
        self, target: Target, *, pool: PoolBounds | None = None, migrate: bool = True
    ) -> None:
        self.target = target
        self.bounds = pool or PoolBounds()
        self.migrate = migrate
        self._pool: AsyncConnectionPool[Connection] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target.display})"

    async def open(self) -> None:
        """Connect, migrate (or check the schema) on one connection, then fill the pool."""
        async with await self._connect() as conn:
            if self.migrate:
                for applied in await migrations.migrate(conn):
                    log.info("schema migrated to version %d", applied.version)
            elif await migrations.pending(conn):
                raise SchemaBehind(
                    f"the database {self.target.display} needs schema version "
                    f"{migrations.LATEST}: run `bridge db migrate`"
                )
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.target.conninfo,
            kwargs=self.target.connect_kwargs(self.bounds.timeout_seconds),
            min_size=self.bounds.min_size,
            max_size=self.bounds.max_size,
            timeout=self.bounds.timeout_seconds,
            name="bridge",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self.bounds.timeout_seconds)
        except Exception as exc:
            await pool.close()
            raise DatabaseUnavailable(
                f"the database {self.target.display} gave no connections for the pool within "
                f"{self.bounds.timeout_seconds:g} s ({type(exc).__name__})"
            ) from None
        self._pool = pool

    async def _connect(self) -> Connection:
        """One connection outside the pool (migrations, `bridge db`), its errors named."""
        try:
            return await psycopg.AsyncConnection.connect(
                self.target.conninfo, **self.target.connect_kwargs(self.bounds.timeout_seconds)
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.target.display}: {self.target.redact(str(exc)).strip()}"
            ) from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable`, with the reason, unless the database answers within
        a short time."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                async with self.pool.connection(timeout=PING_TIMEOUT_SECONDS) as conn:
                    await conn.execute("SELECT 1")
            return
        except (TimeoutError, PoolTimeout):
            reason = await self._why_no_connection()
        except (psycopg.Error, OSError) as exc:
            reason = self.target.redact(str(exc)).strip() or type(exc).__name__
        raise DatabaseUnavailable(f"{self.target.display}: {reason}")

    async def _why_no_connection(self) -> str:
        """Why the pool had no connection to give: what a new connection is told."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                conn = await psycopg.AsyncConnection.connect(
                    self.target.conninfo, **self.target.connect_kwargs(PING_TIMEOUT_SECONDS)
                )
        except TimeoutError:
            return f"no answer within {PING_TIMEOUT_SECONDS:g} s"
        except psycopg.Error as exc:
            return self.target.redact(str(exc)).strip() or type(exc).__name__
        await conn.close()
        return (
            f"no connection of the pool was free within {PING_TIMEOUT_SECONDS:g} s "
            "(a new connection is accepted)"
        )

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection in autocommit mode: each statement its own transaction."""
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """BEGIN … COMMIT on a pooled connection, or ROLLBACK when the block raises."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn
