"""The PostgreSQL schema, as numbered migrations applied in order and recorded in
`schema_version`, version for version the same tables, columns and indexes as the SQLite
schema (`store/sqlite/migrations.py`).

Every pending migration is applied in one transaction (PostgreSQL's DDL is transactional: a
failed migration leaves nothing half done). That transaction first takes a transaction-level
advisory lock, so replicas starting at once against a new database do not both migrate: the
first applies what is pending, the others wait for its commit, then find nothing to do. A
database whose recorded version is newer than this code knows is refused: an older bridge
must not write into a schema it does not understand.

Types: epoch seconds are `double precision` (as the records have them), sealed values and
payloads `bytea`, JSON kept as the text the store wrote (`text`), counters `bigint`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..contract.access_requests import subject_key
from ..contract.audit import GENESIS_HASH
from ..contract.deferrals import snapshot_text_subject_key
from ..contract.oauth import grant_subject_key
from ..schema import SchemaTooNew

__all__ = ["LATEST", "MIGRATIONS", "Migration", "SchemaTooNew", "migrate", "pending", "status"]

# The key of the advisory lock migrations take (any constant; "bridge" in ASCII).
MIGRATION_LOCK = 0x627269646765


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # For what SQL cannot compute exactly as the store does (run after the statements).
    apply: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = field(
        default=None, compare=False
    )


_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, description text NOT NULL,
    applied_at double precision NOT NULL)"""

_FIRST = (
    # OAuth: the replay cache, signing keys, refresh tokens, revoked access tokens.
    """CREATE TABLE used_values (
        namespace text NOT NULL, value text NOT NULL, expires_at double precision NOT NULL,
        PRIMARY KEY (namespace, value))""",
    "CREATE INDEX used_values_expiry ON used_values (expires_at)",
    """CREATE TABLE signing_keys (
        kid text PRIMARY KEY, alg text NOT NULL, public_jwk text NOT NULL,
        private_jwk_sealed bytea NOT NULL, created_at double precision NOT NULL,
        retired_at double precision, expires_at double precision)""",
    """CREATE TABLE refresh_tokens (
        token_hash text PRIMARY KEY, family_id text NOT NULL, client_id text NOT NULL,
        grant_json text NOT NULL, issued_at double precision NOT NULL,
        expires_at double precision NOT NULL, used_at double precision,
        revoked_at double precision)""",
    "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)",
    """CREATE TABLE revoked_access_tokens (
        jti text PRIMARY KEY, expires_at double precision NOT NULL)""",
    # The outbox.
    """CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL,
        payload bytea NOT NULL, status text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0, next_attempt_at double precision NOT NULL,
        created_at double precision NOT NULL, last_error text)""",
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    # Deferred Token Responses.
    """CREATE TABLE deferrals (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code_hash text NOT NULL UNIQUE,
        client_id text NOT NULL, jkt text, snapshot_json text NOT NULL, task_id text,
        status text NOT NULL, created_at double precision NOT NULL,
        expires_at double precision NOT NULL, interval integer NOT NULL,
        required_gap double precision NOT NULL, last_poll_at double precision,
        slow_down_count integer NOT NULL DEFAULT 0, notification_endpoint text,
        code_sealed bytea, notification_token_sealed bytea, resolution_json text,
        resolved_at double precision)""",
    "CREATE INDEX deferrals_task ON deferrals (task_id, status)",
    "CREATE INDEX deferrals_due ON deferrals (status, expires_at)",
    # Access requests (ARAP).
    """CREATE TABLE access_requests (
        id text PRIMARY KEY, pdp text NOT NULL, requester text NOT NULL,
        bundle boolean NOT NULL, subject text NOT NULL, context text NOT NULL,
        items text NOT NULL, requested_access text, callback text, client text,
        status text NOT NULL, created_at double precision NOT NULL,
        expires_at double precision NOT NULL, retain_until double precision NOT NULL,
        updated_at double precision NOT NULL, version bigint NOT NULL)""",
    "CREATE INDEX access_requests_due ON access_requests (status, expires_at)",
    """CREATE TABLE access_request_approvals (
        id text PRIMARY KEY, task_id text NOT NULL, item integer NOT NULL, pdp text NOT NULL,
        template text NOT NULL, members text NOT NULL, binding_hash text NOT NULL,
        binding text NOT NULL, approved_at double precision NOT NULL,
        approved_until double precision NOT NULL, revoked_at double precision)""",
    """CREATE TABLE access_request_idempotency (
        requester text NOT NULL, key text NOT NULL, body_hash text NOT NULL,
        task_id text NOT NULL, keep_until double precision NOT NULL,
        PRIMARY KEY (requester, key))""",
    """CREATE TABLE access_request_bindings (
        jti text PRIMARY KEY, task_id text NOT NULL, expires_at double precision NOT NULL)""",
    # Access requests filed with a remote PDP's service.
    """CREATE TABLE remote_access_requests (
        id text PRIMARY KEY, client_id text NOT NULL, endpoint text NOT NULL,
        idempotency_key text NOT NULL, state_hash text NOT NULL, item_count integer NOT NULL,
        status text NOT NULL, created_at double precision NOT NULL,
        updated_at double precision NOT NULL, expires_at double precision NOT NULL,
        remote_id text, status_endpoint text, cancel_endpoint text, last_json text,
        next_check_at double precision, checked_at double precision,
        checks integer NOT NULL DEFAULT 0, failures integer NOT NULL DEFAULT 0,
        last_error text)""",
    "CREATE UNIQUE INDEX remote_access_requests_state ON remote_access_requests (state_hash)",
    "CREATE INDEX remote_access_requests_due ON remote_access_requests (status, next_check_at)",
    "CREATE INDEX remote_access_requests_expiry ON remote_access_requests (expires_at)",
)

_DEDUPE_KEY = (
    "ALTER TABLE deferrals ADD COLUMN dedupe_key text",
    "CREATE INDEX deferrals_dedupe ON deferrals (dedupe_key, status, expires_at)",
)

# The same indexes as SQLite's version 3: every housekeeping statement uses one.
_HOUSEKEEPING_INDEXES = (
    "CREATE INDEX access_requests_pending ON access_requests (status, created_at)",
    "CREATE INDEX access_requests_retention ON access_requests (retain_until)",
    "CREATE INDEX access_request_approvals_expiry ON access_request_approvals (approved_until)",
    "CREATE INDEX access_request_idempotency_expiry ON access_request_idempotency (keep_until)",
    "CREATE INDEX access_request_bindings_expiry ON access_request_bindings (expires_at)",
    "CREATE INDEX access_request_bindings_task ON access_request_bindings (task_id)",
    "CREATE INDEX outbox_age ON outbox (created_at)",
    "CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at)",
)

# Named leases (store.contract.leases); the primary key is the only lookup.
_LEASES = """CREATE TABLE leases (
    name text PRIMARY KEY, holder text NOT NULL, expires_at double precision NOT NULL)"""
# The same front door tables as SQLite's version 5.
_FRONT_DOOR = (
    """CREATE TABLE authorization_requests (
        id_hash text PRIMARY KEY, kind text NOT NULL, client_id text NOT NULL,
        parameters text NOT NULL, created_at double precision NOT NULL,
        expires_at double precision NOT NULL, browser_hash text, used_at double precision)""",
    "CREATE INDEX authorization_requests_expiry ON authorization_requests (expires_at)",
    """CREATE TABLE authorization_codes (
        code_hash text PRIMARY KEY, client_id text NOT NULL, grant_json text NOT NULL,
        issued_at double precision NOT NULL, expires_at double precision NOT NULL,
        used_at double precision, reused_at double precision, refresh_family_id text,
        access_token_jti text, access_token_expires_at double precision)""",
    "CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at)",
    """CREATE TABLE login_failures (
        key text PRIMARY KEY, failures integer NOT NULL,
        window_ends_at double precision NOT NULL)""",
    "CREATE INDEX login_failures_expiry ON login_failures (window_ends_at)",
    "CREATE TABLE ended_sessions (session_hash text PRIMARY KEY, until double precision NOT NULL)",
    "CREATE INDEX ended_sessions_expiry ON ended_sessions (until)",
)

# The same as SQLite's version 6: what the approval pages need.
_APPROVAL_PAGES = (
    # The audit trail (store.contract.audit). `data` is text, not jsonb: jsonb would give
    # the data back re-encoded (keys sorted, numbers normalised), and the entry's hash covers
    # the data exactly as it comes back. The sequence number is given by the store.
    """CREATE TABLE audit_log (
        seq bigint PRIMARY KEY, at double precision NOT NULL, event text NOT NULL,
        task_id text, actor text, data text NOT NULL, prev_hash text NOT NULL,
        hash text NOT NULL)""",
    "CREATE INDEX audit_log_task ON audit_log (task_id, seq)",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    # The chain's head, one row written with every append (and locked by it, so replicas
    # append one after the other): a log cut short no longer ends where the head says.
    """CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash text NOT NULL)""",
    f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
    # Access tokens issued under approvals, revoked with any of them.
    """CREATE TABLE approval_tokens (
        approval_id text NOT NULL, jti text NOT NULL, expires_at double precision NOT NULL,
        PRIMARY KEY (approval_id, jti))""",
    "CREATE INDEX approval_tokens_expiry ON approval_tokens (expires_at)",
    # "Granted by me": the approvals an approver granted that are still in force.
    "ALTER TABLE access_request_approvals ADD COLUMN approved_by text",
    "CREATE INDEX access_request_approvals_granted_by "
    "ON access_request_approvals (approved_by, approved_at, id) WHERE revoked_at IS NULL",
    # A person's own requests and the inbox, newest first. Ids are ordered byte by byte
    # (COLLATE "C"), as SQLite orders them, whatever the database's collation.
    "ALTER TABLE access_requests ADD COLUMN subject_key text",
    "CREATE INDEX access_requests_subject "
    'ON access_requests (subject_key, created_at, id COLLATE "C")',
    'CREATE INDEX access_requests_recent ON access_requests (created_at, id COLLATE "C")',
    "CREATE INDEX access_requests_status_recent "
    'ON access_requests (status, created_at, id COLLATE "C")',
    "DROP INDEX access_requests_pending",
    # A message two replicas may decide to send is queued once.
    "ALTER TABLE outbox ADD COLUMN dedupe_key text",
    "CREATE UNIQUE INDEX outbox_dedupe ON outbox (dedupe_key) WHERE dedupe_key IS NOT NULL",
)


# The same as SQLite's version 7: the user's own decision on a CIBA request.
_CIBA = (
    """CREATE TABLE ciba_requests (
        id text PRIMARY KEY, code_hash text NOT NULL, client_id text NOT NULL,
        subject_type text NOT NULL, subject_id text NOT NULL, binding_message text,
        words_json text NOT NULL, status text NOT NULL, created_at double precision NOT NULL,
        expires_at double precision NOT NULL, decided_at double precision)""",
    "CREATE INDEX ciba_requests_subject "
    "ON ciba_requests (subject_type, subject_id, status, created_at)",
    "CREATE INDEX ciba_requests_expiry ON ciba_requests (expires_at)",
)


# The same as SQLite's version 8: Shared Signals (store.contract.events).
_EVENTS = (
    """CREATE TABLE ssf_streams (
        id text PRIMARY KEY, receiver text NOT NULL, config text NOT NULL,
        events_delivered text NOT NULL, status text NOT NULL, reason text,
        created_at double precision NOT NULL, updated_at double precision NOT NULL,
        after_seq bigint NOT NULL, authorization_sealed bytea, version integer NOT NULL)""",
    'CREATE INDEX ssf_streams_receiver ON ssf_streams (receiver, created_at, id COLLATE "C")',
    'CREATE INDEX ssf_streams_created ON ssf_streams (created_at, id COLLATE "C")',
    """CREATE TABLE ssf_stream_subjects (
        stream_id text NOT NULL, subject text NOT NULL, included boolean NOT NULL,
        PRIMARY KEY (stream_id, subject))""",
    """CREATE TABLE ssf_poll_queue (
        stream_id text NOT NULL, jti text NOT NULL, claims text NOT NULL,
        created_at double precision NOT NULL, PRIMARY KEY (stream_id, jti))""",
    'CREATE INDEX ssf_poll_queue_order ON ssf_poll_queue (stream_id, created_at, jti COLLATE "C")',
    "CREATE INDEX ssf_poll_queue_age ON ssf_poll_queue (created_at)",
    "CREATE TABLE ssf_cursors (name text PRIMARY KEY, seq bigint NOT NULL)",
    """CREATE TABLE revoked_subjects (
        token_sub text PRIMARY KEY, revoked_until double precision NOT NULL,
        keep_until double precision NOT NULL)""",
    "CREATE INDEX revoked_subjects_expiry ON revoked_subjects (keep_until)",
    "ALTER TABLE deferrals ADD COLUMN subject_key text",
    "CREATE INDEX deferrals_subject ON deferrals (subject_key, status)",
    "ALTER TABLE refresh_tokens ADD COLUMN subject_key text",
    "CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject_key) WHERE revoked_at IS NULL",
    "CREATE INDEX access_request_approvals_task ON access_request_approvals (task_id)",
    "CREATE INDEX approval_tokens_jti ON approval_tokens (jti)",
)


async def _fill_event_subject_keys(conn: psycopg.AsyncConnection[Any]) -> None:
    """The subject keys of deferrals and refresh tokens made before version 8, by the
    contract's own rules."""
    cursor = await conn.execute("SELECT code_hash, snapshot_json FROM deferrals")
    deferrals = [(snapshot_text_subject_key(text), code) for code, text in await cursor.fetchall()]
    cursor = await conn.execute("SELECT token_hash, grant_json FROM refresh_tokens")
    tokens = [(grant_subject_key(text), token) for token, text in await cursor.fetchall()]
    async with conn.cursor() as many:
        if deferrals:
            await many.executemany(
                "UPDATE deferrals SET subject_key = %s WHERE code_hash = %s", deferrals
            )
        if tokens:
            await many.executemany(
                "UPDATE refresh_tokens SET subject_key = %s WHERE token_hash = %s", tokens
            )


async def _fill_subject_keys(conn: psycopg.AsyncConnection[Any]) -> None:
    """The key of every task filed before version 6, by the contract's own rule (in Python:
    PostgreSQL's JSON functions would not spell it byte for byte as `json.dumps` does)."""
    cursor = await conn.execute("SELECT id, subject FROM access_requests WHERE subject_key IS NULL")
    keys = [
        (subject_key(json.loads(subject)), task_id) for task_id, subject in await cursor.fetchall()
    ]
    if keys:
        async with conn.cursor() as many:
            await many.executemany(
                "UPDATE access_requests SET subject_key = %s WHERE id = %s", keys
            )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "OAuth, outbox, deferral and access request tables", _FIRST),
    Migration(2, "deferrals.dedupe_key: a repeated deferred request finds its code", _DEDUPE_KEY),
    Migration(3, "indexes for every housekeeping statement", _HOUSEKEEPING_INDEXES),
    Migration(4, "leases: work one process does for all (housekeeping)", (_LEASES,)),
    Migration(
        5,
        "the front door: requests, codes, sign-in throttle, sign-outs",
        _FRONT_DOOR,
    ),
    Migration(
        6,
        "approval pages: audit trail, approval tokens, inbox and subject indexes, outbox keys",
        _APPROVAL_PAGES,
        _fill_subject_keys,
    ),
    Migration(7, "CIBA: the user's own decision on a backchannel request", _CIBA),
    Migration(
        8,
        "Shared Signals: streams, poll queue, cursor, revoked subjects, subject keys",
        _EVENTS,
        _fill_event_subject_keys,
    ),
)
LATEST = MIGRATIONS[-1].version


async def current_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The recorded schema version; 0 for a database that has recorded none."""
    cursor = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    exists = await cursor.fetchone()
    if not exists or not exists[0]:
        return 0
    row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _check(version: int) -> list[Migration]:
    if version > LATEST:
        raise SchemaTooNew(
            f"the database is at schema version {version}; this bridge knows up to {LATEST}"
        )
    return [m for m in MIGRATIONS if m.version > version]


async def pending(conn: psycopg.AsyncConnection[Any]) -> list[Migration]:
    """The migrations not yet applied; `SchemaTooNew` when the database is ahead."""
    return _check(await current_version(conn))


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[Migration]:
    """Apply what is pending in one transaction holding the migration lock (one replica
    migrates, the others wait and then find nothing to do). Returns what was applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (MIGRATION_LOCK,))
        await conn.execute(_VERSION_TABLE)
        todo = await pending(conn)
        for migration in todo:
            for statement in migration.statements:
                await conn.execute(statement)
            if migration.apply is not None:
                await migration.apply(conn)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.description, time.time()),
            )
    return todo


def status(conn: psycopg.Connection[Any]) -> int:
    """The recorded version, read on a plain connection without changing anything."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0
