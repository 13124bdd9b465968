"""The embedded store: one SQLite file, with the OAuth tables (replay cache, signing keys,
refresh tokens, revoked access tokens) and the table groups of the other parts mixed in.
It implements the whole store contract (`store.contract.Store`)."""

from __future__ import annotations

import time
from pathlib import Path

from ..contract.oauth import RefreshTokenRecord, SigningKeyRecord
from .approvals import ApprovalTables
from .audit import AuditTables
from .ciba import CibaTables
from .connection import transaction
from .deferrals import DeferralTables
from .front_door import FrontDoorTables
from .leases import LeaseTables
from .outbox import OutboxTables
from .remote_tasks import RemoteTaskTables
from .streams import StreamTables
from .subjects import SubjectTables
from .tasks import TaskTables

# Expired replay records are purged every this many writes (cheap: an indexed range delete).
_PURGE_EVERY = 1000
DELETE_USED_VALUES = "DELETE FROM used_values WHERE expires_at < ?"
DELETE_REVOKED_TOKENS = "DELETE FROM revoked_access_tokens WHERE expires_at < ?"


class SQLiteStore(
    DeferralTables,
    CibaTables,
    FrontDoorTables,
    TaskTables,
    ApprovalTables,
    RemoteTaskTables,
    OutboxTables,
    AuditTables,
    LeaseTables,
    StreamTables,
    SubjectTables,
):
    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        super().__init__(path, migrate=migrate)
        self._writes = 0

    # -- replay cache --------------------------------------------------------------------

    async def use_once(self, namespace: str, value: str, expires_at: float) -> bool:
        def work() -> bool:
            now = time.time()
            with transaction(self.db):
                cursor = self.db.execute(
                    "INSERT INTO used_values (namespace, value, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (namespace, value) DO UPDATE SET expires_at = excluded.expires_at "
                    "WHERE used_values.expires_at < ?",
                    (namespace, value, expires_at, now),
                )
                first = cursor.rowcount == 1
                self._writes += 1
                if self._writes % _PURGE_EVERY == 0:
                    for statement in (DELETE_USED_VALUES, DELETE_REVOKED_TOKENS):
                        self.db.execute(statement, (now,))
            return first

        return await self._run(work)

    # -- signing keys --------------------------------------------------------------------

    async def signing_keys(self) -> list[SigningKeyRecord]:
        def work() -> list[SigningKeyRecord]:
            rows = self.db.execute(
                "SELECT kid, alg, public_jwk, private_jwk_sealed, created_at, retired_at, "
                "expires_at FROM signing_keys WHERE expires_at IS NULL OR expires_at > ? "
                "ORDER BY created_at DESC",
                (time.time(),),
            ).fetchall()
            return [SigningKeyRecord(*row) for row in rows]

        return await self._run(work)

    async def add_signing_key(
        self, record: SigningKeyRecord, *, retire_others_at: float, others_expire_at: float
    ) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "UPDATE signing_keys SET retired_at = ?, expires_at = ? "
                    "WHERE retired_at IS NULL",
                    (retire_others_at, others_expire_at),
                )
                self.db.execute(
                    "INSERT INTO signing_keys VALUES (?, ?, ?, ?, ?, ?, ?)", _key_row(record)
                )

        await self._run(work)

    async def add_first_signing_key(self, record: SigningKeyRecord) -> bool:
        def work() -> bool:
            with transaction(self.db):
                active = self.db.execute(
                    "SELECT 1 FROM signing_keys WHERE retired_at IS NULL LIMIT 1"
                ).fetchone()
                if active is not None:
                    return False
                self.db.execute(
                    "INSERT INTO signing_keys VALUES (?, ?, ?, ?, ?, ?, ?)", _key_row(record)
                )
            return True

        return await self._run(work)

    # -- refresh tokens ------------------------------------------------------------------

    async def save_refresh_token(self, record: RefreshTokenRecord) -> None:
        """Saved revoked into a family that has been revoked (the contract's rule)."""

        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, grant_json, "
                    "issued_at, expires_at, used_at, revoked_at, subject_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, "
                    "COALESCE(?, (SELECT MAX(revoked_at) FROM refresh_tokens "
                    "WHERE family_id = ?)), ?)",
                    (
                        record.token_hash,
                        record.family_id,
                        record.client_id,
                        record.grant,
                        record.issued_at,
                        record.expires_at,
                        record.used_at,
                        record.revoked_at,
                        record.family_id,
                        # A subject's refresh tokens are found by it (a revoked session).
                        record.subject_key,
                    ),
                )

        await self._run(work)

    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        return await self._run(lambda: self._find_refresh(token_hash))

    def _find_refresh(self, token_hash: str) -> RefreshTokenRecord | None:
        row = self.db.execute(
            "SELECT token_hash, family_id, client_id, grant_json, issued_at, expires_at, "
            "used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        return None if row is None else RefreshTokenRecord(*row)

    async def use_refresh_token(self, token_hash: str, now: float) -> RefreshTokenRecord | None:
        def work() -> RefreshTokenRecord | None:
            with transaction(self.db):
                record = self._find_refresh(token_hash)
                if record is None:
                    return None
                if record.used_at is not None:
                    # A rotated token came back: it has leaked, so the whole grant goes
                    # (RFC 9700 §4.14.2). Clients must not refresh concurrently with one token.
                    self._revoke_family(record.family_id, now)
                    return None
                if record.revoked_at is not None or record.expires_at <= now:
                    return None
                self.db.execute(
                    "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?",
                    (now, token_hash),
                )
                return record

        return await self._run(work)

    async def revoke_refresh_family(self, family_id: str, now: float) -> None:
        def work() -> None:
            with transaction(self.db):
                self._revoke_family(family_id, now)

        await self._run(work)

    def _revoke_family(self, family_id: str, now: float) -> None:
        self.db.execute(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
            (now, family_id),
        )

    # -- revoked access tokens -----------------------------------------------------------

    async def revoke_access_token(self, jti: str, expires_at: float) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "INSERT OR IGNORE INTO revoked_access_tokens VALUES (?, ?)", (jti, expires_at)
                )

        await self._run(work)

    async def is_access_token_revoked(self, jti: str) -> bool:
        def work() -> bool:
            row = self.db.execute(
                "SELECT 1 FROM revoked_access_tokens WHERE jti = ?", (jti,)
            ).fetchone()
            return row is not None

        return await self._run(work)


def _key_row(record: SigningKeyRecord) -> tuple[object, ...]:
    return (
        record.kid,
        record.alg,
        record.public_jwk,
        record.private_jwk_sealed,
        record.created_at,
        record.retired_at,
        record.expires_at,
    )
