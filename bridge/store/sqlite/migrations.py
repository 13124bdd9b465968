"""The SQLite schema, as numbered migrations applied in order and recorded in
`schema_version`.

A database made before the bridge recorded versions holds some or all of version 1's tables
(perhaps without `deferrals.dedupe_key`): version 1 creates only what is missing and version 2
adds that column, so such a database is brought up to date without losing a row. A database
whose recorded version is newer than this code knows is refused: an older bridge must not
write into a schema it does not understand.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..contract.access_requests import subject_key
from ..contract.audit import GENESIS_HASH
from ..contract.deferrals import snapshot_text_subject_key
from ..contract.oauth import grant_subject_key
from ..schema import SchemaTooNew

__all__ = ["LATEST", "MIGRATIONS", "Migration", "SchemaTooNew", "migrate", "pending"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...] = ()
    # For what SQL alone cannot say idempotently (SQLite has no ADD COLUMN IF NOT EXISTS).
    apply: Callable[[sqlite3.Connection], None] | None = field(default=None, compare=False)


_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"""

_FIRST = (
    # OAuth: the replay cache, signing keys, refresh tokens, revoked access tokens.
    """CREATE TABLE IF NOT EXISTS used_values (
        namespace TEXT NOT NULL, value TEXT NOT NULL, expires_at REAL NOT NULL,
        PRIMARY KEY (namespace, value)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS used_values_expiry ON used_values (expires_at)",
    """CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
        private_jwk_sealed BLOB NOT NULL, created_at REAL NOT NULL,
        retired_at REAL, expires_at REAL)""",
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, client_id TEXT NOT NULL,
        grant_json TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL,
        used_at REAL, revoked_at REAL)""",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id)",
    """CREATE TABLE IF NOT EXISTS revoked_access_tokens (
        jti TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID""",
    # The outbox.
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL, created_at REAL NOT NULL, last_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
    # Deferred Token Responses.
    """CREATE TABLE IF NOT EXISTS deferrals (
        id INTEGER PRIMARY KEY, code_hash TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL,
        jkt TEXT, snapshot_json TEXT NOT NULL, task_id TEXT, status TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, interval INTEGER NOT NULL,
        required_gap REAL NOT NULL, last_poll_at REAL,
        slow_down_count INTEGER NOT NULL DEFAULT 0, notification_endpoint TEXT,
        code_sealed BLOB, notification_token_sealed BLOB, resolution_json TEXT,
        resolved_at REAL)""",
    "CREATE INDEX IF NOT EXISTS deferrals_task ON deferrals (task_id, status)",
    "CREATE INDEX IF NOT EXISTS deferrals_due ON deferrals (status, expires_at)",
    # Access requests (ARAP).
    """CREATE TABLE IF NOT EXISTS access_requests (
        id TEXT PRIMARY KEY, pdp TEXT NOT NULL, requester TEXT NOT NULL,
        bundle INTEGER NOT NULL, subject TEXT NOT NULL, context TEXT NOT NULL,
        items TEXT NOT NULL, requested_access TEXT, callback TEXT, client TEXT,
        status TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
        retain_until REAL NOT NULL, updated_at REAL NOT NULL, version INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS access_requests_due ON access_requests (status, expires_at)",
    """CREATE TABLE IF NOT EXISTS access_request_approvals (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL, item INTEGER NOT NULL, pdp TEXT NOT NULL,
        template TEXT NOT NULL, members TEXT NOT NULL, binding_hash TEXT NOT NULL,
        binding TEXT NOT NULL, approved_at REAL NOT NULL, approved_until REAL NOT NULL,
        revoked_at REAL)""",
    """CREATE TABLE IF NOT EXISTS access_request_idempotency (
        requester TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
        task_id TEXT NOT NULL, keep_until REAL NOT NULL,
        PRIMARY KEY (requester, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS access_request_bindings (
        jti TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID""",
    # Access requests filed with a remote PDP's service.
    """CREATE TABLE IF NOT EXISTS remote_access_requests (
        id TEXT PRIMARY KEY, client_id TEXT NOT NULL, endpoint TEXT NOT NULL,
        idempotency_key TEXT NOT NULL, state_hash TEXT NOT NULL, item_count INTEGER NOT NULL,
        status TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
        expires_at REAL NOT NULL, remote_id TEXT, status_endpoint TEXT, cancel_endpoint TEXT,
        last_json TEXT, next_check_at REAL, checked_at REAL,
        checks INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
        last_error TEXT)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS remote_access_requests_state "
    "ON remote_access_requests (state_hash)",
    "CREATE INDEX IF NOT EXISTS remote_access_requests_due "
    "ON remote_access_requests (status, next_check_at)",
    "CREATE INDEX IF NOT EXISTS remote_access_requests_expiry "
    "ON remote_access_requests (expires_at)",
)


def _add_dedupe_key(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(deferrals)")}
    if "dedupe_key" not in columns:
        db.execute("ALTER TABLE deferrals ADD COLUMN dedupe_key TEXT")
    db.execute(
        "CREATE INDEX IF NOT EXISTS deferrals_dedupe ON deferrals (dedupe_key, status, expires_at)"
    )


# Every housekeeping statement (the chores' expiries and purges, the outbox purge, the replay
# cache's sweep) and every lookup on a hot path is answered from an index; without these
# some scanned whole tables (tests/store/test_plans.py checks the plans).
_HOUSEKEEPING_INDEXES = (
    # The approvers' inbox: pending tasks, oldest first.
    "CREATE INDEX IF NOT EXISTS access_requests_pending ON access_requests (status, created_at)",
    # The purge of decided tasks past their retention.
    "CREATE INDEX IF NOT EXISTS access_requests_retention ON access_requests (retain_until)",
    "CREATE INDEX IF NOT EXISTS access_request_approvals_expiry "
    "ON access_request_approvals (approved_until)",
    "CREATE INDEX IF NOT EXISTS access_request_idempotency_expiry "
    "ON access_request_idempotency (keep_until)",
    "CREATE INDEX IF NOT EXISTS access_request_bindings_expiry "
    "ON access_request_bindings (expires_at)",
    # A submission counts the binding jtis it claimed.
    "CREATE INDEX IF NOT EXISTS access_request_bindings_task ON access_request_bindings (task_id)",
    "CREATE INDEX IF NOT EXISTS outbox_age ON outbox (created_at)",
    "CREATE INDEX IF NOT EXISTS revoked_access_tokens_expiry ON revoked_access_tokens (expires_at)",
)

# Named leases (store.contract.leases); the primary key is the only lookup.
_LEASES = """CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)"""
# The front door: authorization requests (pushed, or waiting for a person), codes, and the
# sign-in throttle's windows; each with the index its housekeeping purge uses.
_FRONT_DOOR = (
    """CREATE TABLE IF NOT EXISTS authorization_requests (
        id_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL,
        parameters TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
        browser_hash TEXT, used_at REAL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS authorization_requests_expiry "
    "ON authorization_requests (expires_at)",
    """CREATE TABLE IF NOT EXISTS authorization_codes (
        code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, grant_json TEXT NOT NULL,
        issued_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL, reused_at REAL,
        refresh_family_id TEXT, access_token_jti TEXT, access_token_expires_at REAL)
        WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS authorization_codes_expiry ON authorization_codes (expires_at)",
    """CREATE TABLE IF NOT EXISTS login_failures (
        key TEXT PRIMARY KEY, failures INTEGER NOT NULL, window_ends_at REAL NOT NULL)
        WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS login_failures_expiry ON login_failures (window_ends_at)",
    """CREATE TABLE IF NOT EXISTS ended_sessions (
        session_hash TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ended_sessions_expiry ON ended_sessions (until)",
)

# What the approval pages need.
_APPROVAL_PAGES = (
    # The audit trail (store.contract.audit). `data` is the JSON text as written, not parsed
    # and re-encoded by the database: the entry's hash covers the data exactly as it comes
    # back. The chain's sequence number is the row id, given by the store, never by SQLite.
    """CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL, task_id TEXT,
        actor TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    "CREATE INDEX audit_log_task ON audit_log (task_id, seq)",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    # The chain's head, one row written with every append: a log cut short no longer ends
    # where the head says. seq 0 is the empty log.
    """CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)""",
    f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
    # Access tokens issued under approvals, revoked with any of them; a row lasts as long as
    # its token.
    """CREATE TABLE approval_tokens (
        approval_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at REAL NOT NULL,
        PRIMARY KEY (approval_id, jti)) WITHOUT ROWID""",
    "CREATE INDEX approval_tokens_expiry ON approval_tokens (expires_at)",
    # "Granted by me": the approvals an approver granted that are still in force.
    "ALTER TABLE access_request_approvals ADD COLUMN approved_by TEXT",
    "CREATE INDEX access_request_approvals_granted_by "
    "ON access_request_approvals (approved_by, approved_at, id) WHERE revoked_at IS NULL",
    # A person's own requests, newest first (filled for earlier rows by `_fill_subject_keys`).
    "ALTER TABLE access_requests ADD COLUMN subject_key TEXT",
    "CREATE INDEX access_requests_subject ON access_requests (subject_key, created_at, id)",
    # The inbox, newest first, of any status or of one; `id` in the index orders the ties
    # without a sort. The (status, created_at) index of version 3 is a prefix of the second.
    "CREATE INDEX access_requests_recent ON access_requests (created_at, id)",
    "CREATE INDEX access_requests_status_recent ON access_requests (status, created_at, id)",
    "DROP INDEX access_requests_pending",
    # A message that two replicas may decide to send is queued once: a key stays taken
    # until its row is purged. NULLs are distinct, so rows without a key never conflict.
    "ALTER TABLE outbox ADD COLUMN dedupe_key TEXT",
    "CREATE UNIQUE INDEX outbox_dedupe ON outbox (dedupe_key) WHERE dedupe_key IS NOT NULL",
)


# The user's own decision on a CIBA request (store.contract.ciba): her pending ones, newest
# first, for her page, and the purge of expired ones.
_CIBA = (
    """CREATE TABLE ciba_requests (
        id TEXT PRIMARY KEY, code_hash TEXT NOT NULL, client_id TEXT NOT NULL,
        subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, binding_message TEXT,
        words_json TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
        expires_at REAL NOT NULL, decided_at REAL) WITHOUT ROWID""",
    "CREATE INDEX ciba_requests_subject "
    "ON ciba_requests (subject_type, subject_id, status, created_at)",
    "CREATE INDEX ciba_requests_expiry ON ciba_requests (expires_at)",
)


# Shared Signals (store.contract.events): the transmitter's streams, their subjects, the SETs
# waiting for a poll and its cursor in the audit trail; and what a subject's revocation
# finds by subject (deferrals, refresh tokens, approvals through their requests) or writes
# (the access tokens of a subject issued until then).
_EVENTS = (
    """CREATE TABLE ssf_streams (
        id TEXT PRIMARY KEY, receiver TEXT NOT NULL, config TEXT NOT NULL,
        events_delivered TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, after_seq INTEGER NOT NULL,
        authorization_sealed BLOB, version INTEGER NOT NULL)""",
    "CREATE INDEX ssf_streams_receiver ON ssf_streams (receiver, created_at, id)",
    "CREATE INDEX ssf_streams_created ON ssf_streams (created_at, id)",
    """CREATE TABLE ssf_stream_subjects (
        stream_id TEXT NOT NULL, subject TEXT NOT NULL, included INTEGER NOT NULL,
        PRIMARY KEY (stream_id, subject)) WITHOUT ROWID""",
    """CREATE TABLE ssf_poll_queue (
        stream_id TEXT NOT NULL, jti TEXT NOT NULL, claims TEXT NOT NULL,
        created_at REAL NOT NULL, PRIMARY KEY (stream_id, jti)) WITHOUT ROWID""",
    "CREATE INDEX ssf_poll_queue_order ON ssf_poll_queue (stream_id, created_at, jti)",
    "CREATE INDEX ssf_poll_queue_age ON ssf_poll_queue (created_at)",
    """CREATE TABLE ssf_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE revoked_subjects (
        token_sub TEXT PRIMARY KEY, revoked_until REAL NOT NULL, keep_until REAL NOT NULL)
        WITHOUT ROWID""",
    "CREATE INDEX revoked_subjects_expiry ON revoked_subjects (keep_until)",
    "ALTER TABLE deferrals ADD COLUMN subject_key TEXT",
    "CREATE INDEX deferrals_subject ON deferrals (subject_key, status)",
    "ALTER TABLE refresh_tokens ADD COLUMN subject_key TEXT",
    "CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject_key) WHERE revoked_at IS NULL",
    "CREATE INDEX access_request_approvals_task ON access_request_approvals (task_id)",
    "CREATE INDEX approval_tokens_jti ON approval_tokens (jti)",
)


def _fill_event_subject_keys(db: sqlite3.Connection) -> None:
    """The subject keys of deferrals and refresh tokens made before version 8, by the
    contract's own rules."""
    deferrals = db.execute("SELECT code_hash, snapshot_json FROM deferrals").fetchall()
    db.executemany(
        "UPDATE deferrals SET subject_key = ? WHERE code_hash = ?",
        [(snapshot_text_subject_key(text), code) for code, text in deferrals],
    )
    tokens = db.execute("SELECT token_hash, grant_json FROM refresh_tokens").fetchall()
    db.executemany(
        "UPDATE refresh_tokens SET subject_key = ? WHERE token_hash = ?",
        [(grant_subject_key(text), token) for token, text in tokens],
    )


def _fill_subject_keys(db: sqlite3.Connection) -> None:
    """The key of every task filed before version 6, by the contract's own rule (in Python:
    SQLite's JSON functions would not spell it byte for byte as `json.dumps` does)."""
    rows = db.execute("SELECT id, subject FROM access_requests WHERE subject_key IS NULL")
    db.executemany(
        "UPDATE access_requests SET subject_key = ? WHERE id = ?",
        [(subject_key(json.loads(subject)), task_id) for task_id, subject in rows.fetchall()],
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "OAuth, outbox, deferral and access request tables", _FIRST),
    Migration(
        2, "deferrals.dedupe_key: a repeated deferred request finds its code", (), _add_dedupe_key
    ),
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


def current_version(db: sqlite3.Connection) -> int:
    """The recorded schema version; 0 for a database that has recorded none."""
    db.execute(_VERSION_TABLE)
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def pending(db: sqlite3.Connection) -> list[Migration]:
    """The migrations not yet applied; `SchemaTooNew` when the database is ahead."""
    version = current_version(db)
    if version > LATEST:
        raise SchemaTooNew(
            f"the database is at schema version {version}; this bridge knows up to {LATEST}"
        )
    return [m for m in MIGRATIONS if m.version > version]


def migrate(db: sqlite3.Connection) -> list[Migration]:
    """Apply what is pending, each migration in the transaction the caller holds (one
    process migrates, the others wait on the write lock and then find nothing to do).
    Returns what was applied."""
    todo = pending(db)
    for migration in todo:
        for statement in migration.statements:
            db.execute(statement)
        if migration.apply is not None:
            migration.apply(db)
        db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, time.time()),
        )
    return todo
