"""The shared store: one PostgreSQL database that several replicas use at once, with the OAuth
tables (replay cache, signing keys, refresh tokens, revoked access tokens) and the table
groups of the other parts mixed in. It implements the whole store contract
(`store.contract.Store`) with the SQLite store's behaviour, method for method; how the
transactions stay exact across replicas is in `connection.py`.
"""

from __future__ import annotations

import time

from ..contract.oauth import RefreshTokenRecord, SigningKeyRecord
from .approvals import ApprovalTables
from .audit import AuditTables
from .ciba import CibaTables
from .connection import Connection, PoolBounds, Target, lock_family, revoke_family
from .deferrals import DeferralTables
from .front_door import FrontDoorTables
from .leases import LeaseTables
from .outbox import OutboxTables
from .remote_tasks import RemoteTaskTables
from .streams import StreamTables
from .subjects import SubjectTables
from .tasks import TaskTables

# Expired replay records are purged every this many writes of this process (an indexed
# range delete); another replica's writes count towards its own sweep.
_PURGE_EVERY = 1000
DELETE_USED_VALUES = "DELETE FROM used_values WHERE expires_at < %s"
DELETE_REVOKED_TOKENS = "DELETE FROM revoked_access_tokens WHERE expires_at < %s"
# One statement: the value is new, or its record has expired. A replica recording the same
# value at the same moment waits on the first one's row, then finds it unexpired.
_USE_ONCE = (
    "INSERT INTO used_values (namespace, value, expires_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (namespace, value) DO UPDATE SET expires_at = EXCLUDED.expires_at "
    "WHERE used_values.expires_at < %s"
)
_KEY_COLUMNS = "kid, alg, public_jwk, private_jwk_sealed, created_at, retired_at, expires_at"
_REFRESH_COLUMNS = (
    "token_hash, family_id, client_id, grant_json, issued_at, expires_at, used_at, revoked_at"
)
# Rotations wait for each other (SHARE ROW EXCLUSIVE conflicts with itself), never for reads.
_LOCK_KEYS = "LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"


class PostgresStore(
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
    def __init__(
        self, target: Target, *, pool: PoolBounds | None = None, migrate: bool = True
    ) -> None:
        super().__init__(target, pool=pool, migrate=migrate)
        self._writes = 0

    # -- replay cache --------------------------------------------------------------------

    async def use_once(self, namespace: str, value: str, expires_at: float) -> bool:
        now = time.time()
        self._writes += 1
        sweep = self._writes % _PURGE_EVERY == 0
        async with self.connection() as conn:
            cursor = await conn.execute(_USE_ONCE, (namespace, value, expires_at, now))
            first = cursor.rowcount == 1
            if sweep:
                for statement in (DELETE_USED_VALUES, DELETE_REVOKED_TOKENS):
                    await conn.execute(statement, (now,))
        return first

    # -- signing keys --------------------------------------------------------------------

    async def signing_keys(self) -> list[SigningKeyRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM signing_keys "
                "WHERE expires_at IS NULL OR expires_at > %s ORDER BY created_at DESC",
                (time.time(),),
            )
            return [SigningKeyRecord(*row) for row in await cursor.fetchall()]

    async def add_signing_key(
        self, record: SigningKeyRecord, *, retire_others_at: float, others_expire_at: float
    ) -> None:
        async with self.transaction() as conn:
            await conn.execute(_LOCK_KEYS)
            await conn.execute(
                "UPDATE signing_keys SET retired_at = %s, expires_at = %s WHERE retired_at IS NULL",
                (retire_others_at, others_expire_at),
            )
            await self._insert_key(conn, record)

    async def add_first_signing_key(self, record: SigningKeyRecord) -> bool:
        async with self.transaction() as conn:
            await conn.execute(_LOCK_KEYS)
            cursor = await conn.execute(
                "SELECT 1 FROM signing_keys WHERE retired_at IS NULL LIMIT 1"
            )
            if await cursor.fetchone() is not None:
                return False
            await self._insert_key(conn, record)
        return True

    @staticmethod
    async def _insert_key(conn: Connection, record: SigningKeyRecord) -> None:
        await conn.execute(
            f"INSERT INTO signing_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                record.kid,
                record.alg,
                record.public_jwk,
                record.private_jwk_sealed,
                record.created_at,
                record.retired_at,
                record.expires_at,
            ),
        )

    # -- refresh tokens ------------------------------------------------------------------

    async def save_refresh_token(self, record: RefreshTokenRecord) -> None:
        """Saved revoked into a family that has been revoked. The family's lock orders it
        with a revocation in another replica: whichever commits second sees the other."""
        async with self.transaction() as conn:
            await lock_family(conn, record.family_id)
            await conn.execute(
                f"INSERT INTO refresh_tokens ({_REFRESH_COLUMNS}, subject_key) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, COALESCE(%s, "
                "(SELECT MAX(revoked_at) FROM refresh_tokens WHERE family_id = %s)), %s)",
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

    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        async with self.connection() as conn:
            return await self._find_refresh(conn, token_hash)

    @staticmethod
    async def _find_refresh(
        conn: Connection, token_hash: str, *, lock: bool = False
    ) -> RefreshTokenRecord | None:
        cursor = await conn.execute(
            f"SELECT {_REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = %s"
            + (" FOR UPDATE" if lock else ""),
            (token_hash,),
        )
        row = await cursor.fetchone()
        return None if row is None else RefreshTokenRecord(*row)

    async def use_refresh_token(self, token_hash: str, now: float) -> RefreshTokenRecord | None:
        """Mark the token used, atomically: the row is locked, so of two replicas presenting
        one token at once the second sees it used (and revokes the family, holding its
        lock, so that a token the first saves into it meanwhile is revoked too)."""
        async with self.transaction() as conn:
            found = await self._find_refresh(conn, token_hash)
            if found is None:
                return None
            # The family's lock first (a token's family never changes), then the row's.
            await lock_family(conn, found.family_id)
            record = await self._find_refresh(conn, token_hash, lock=True)
            if record is None:
                return None
            if record.used_at is not None:
                # A rotated token came back: it has leaked, so the whole grant goes
                # (RFC 9700 §4.14.2). Clients must not refresh concurrently with one token.
                await revoke_family(conn, record.family_id, now)
                return None
            if record.revoked_at is not None or record.expires_at <= now:
                return None
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s", (now, token_hash)
            )
            return record

    async def revoke_refresh_family(self, family_id: str, now: float) -> None:
        async with self.transaction() as conn:
            await lock_family(conn, family_id)
            await revoke_family(conn, family_id, now)

    # -- revoked access tokens -----------------------------------------------------------

    async def revoke_access_token(self, jti: str, expires_at: float) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (%s, %s) "
                "ON CONFLICT (jti) DO NOTHING",
                (jti, expires_at),
            )

    async def is_access_token_revoked(self, jti: str) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM revoked_access_tokens WHERE jti = %s", (jti,)
            )
            return await cursor.fetchone() is not None
