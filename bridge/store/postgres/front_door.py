"""The front door's tables on PostgreSQL (rows and rules: `store.contract.front_door`).

Each single use is one statement (`UPDATE ... WHERE used_at IS NULL ... RETURNING`), so two
replicas redeeming one code at once get one `first` between them.
"""

from __future__ import annotations

from ..contract.front_door import AuthorizationCodeRecord, AuthorizationRequestRecord, CodeUse
from .connection import PostgresBase

_REQUEST_COLUMNS = (
    "id_hash, kind, client_id, parameters, created_at, expires_at, browser_hash, used_at"
)
_CODE_COLUMNS = (
    "code_hash, client_id, grant_json, issued_at, expires_at, used_at, reused_at, "
    "refresh_family_id, access_token_jti, access_token_expires_at"
)
DELETE_REQUESTS = "DELETE FROM authorization_requests WHERE expires_at < %s"
DELETE_CODES = "DELETE FROM authorization_codes WHERE expires_at < %s"
DELETE_LOGIN_WINDOWS = "DELETE FROM login_failures WHERE window_ends_at < %s"
DELETE_ENDED_SESSIONS = "DELETE FROM ended_sessions WHERE until < %s"


class FrontDoorTables(PostgresBase):
    # -- authorization requests ------------------------------------------------------------

    async def save_authorization_request(self, record: AuthorizationRequestRecord) -> None:
        async with self.connection() as conn:
            await conn.execute(
                f"INSERT INTO authorization_requests ({_REQUEST_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.id_hash,
                    record.kind,
                    record.client_id,
                    record.parameters,
                    record.created_at,
                    record.expires_at,
                    record.browser_hash,
                    record.used_at,
                ),
            )

    async def find_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM authorization_requests "
                "WHERE id_hash = %s AND used_at IS NULL AND expires_at > %s",
                (id_hash, now),
            )
            row = await cursor.fetchone()
        return None if row is None else AuthorizationRequestRecord(*row)

    async def use_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE authorization_requests SET used_at = %s "
                "WHERE id_hash = %s AND used_at IS NULL AND expires_at > %s "
                f"RETURNING {_REQUEST_COLUMNS}",
                (now, id_hash, now),
            )
            row = await cursor.fetchone()
        return None if row is None else AuthorizationRequestRecord(*row)

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, record: AuthorizationCodeRecord) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO authorization_codes "
                "(code_hash, client_id, grant_json, issued_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    record.code_hash,
                    record.client_id,
                    record.grant,
                    record.issued_at,
                    record.expires_at,
                ),
            )

    async def use_authorization_code(
        self, code_hash: str, now: float
    ) -> tuple[AuthorizationCodeRecord, CodeUse] | None:
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE authorization_codes SET used_at = %s "
                "WHERE code_hash = %s AND used_at IS NULL AND expires_at > %s "
                f"RETURNING {_CODE_COLUMNS}",
                (now, code_hash, now),
            )
            row = await cursor.fetchone()
            if row is not None:
                return AuthorizationCodeRecord(*row), "first"
            cursor = await conn.execute(
                "UPDATE authorization_codes SET reused_at = COALESCE(reused_at, %s) "
                f"WHERE code_hash = %s AND used_at IS NOT NULL RETURNING {_CODE_COLUMNS}",
                (now, code_hash),
            )
            row = await cursor.fetchone()
        return None if row is None else (AuthorizationCodeRecord(*row), "again")

    async def record_code_tokens(
        self,
        code_hash: str,
        *,
        refresh_family_id: str | None,
        access_token_jti: str,
        access_token_expires_at: float,
    ) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE authorization_codes SET refresh_family_id = %s, access_token_jti = %s, "
                "access_token_expires_at = %s WHERE code_hash = %s AND reused_at IS NULL",
                (refresh_family_id, access_token_jti, access_token_expires_at, code_hash),
            )
            return cursor.rowcount == 1

    # -- sign-in throttling ------------------------------------------------------------------

    async def login_failures(self, key: str, now: float) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT failures FROM login_failures WHERE key = %s AND window_ends_at > %s",
                (key, now),
            )
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def add_login_failure(self, key: str, now: float, window_seconds: float) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO login_failures AS f (key, failures, window_ends_at) "
                "VALUES (%s, 1, %s) ON CONFLICT (key) DO UPDATE SET "
                "failures = CASE WHEN f.window_ends_at > %s THEN f.failures + 1 ELSE 1 END, "
                "window_ends_at = CASE WHEN f.window_ends_at > %s THEN f.window_ends_at "
                "ELSE EXCLUDED.window_ends_at END RETURNING failures",
                (key, now + window_seconds, now, now),
            )
            row = await cursor.fetchone()
        assert row is not None  # an upsert always returns its row
        return int(row[0])

    async def clear_login_failures(self, key: str) -> None:
        async with self.connection() as conn:
            await conn.execute("DELETE FROM login_failures WHERE key = %s", (key,))

    # -- ended sessions ----------------------------------------------------------------------

    async def end_session(self, session_hash: str, until: float) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO ended_sessions (session_hash, until) VALUES (%s, %s) "
                "ON CONFLICT (session_hash) DO NOTHING",
                (session_hash, until),
            )

    async def session_ended(self, session_hash: str, now: float) -> bool:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM ended_sessions WHERE session_hash = %s AND until > %s",
                (session_hash, now),
            )
            return await cursor.fetchone() is not None

    async def purge_front_door(self, now: float) -> None:
        async with self.connection() as conn:
            for statement in (
                DELETE_REQUESTS,
                DELETE_CODES,
                DELETE_LOGIN_WINDOWS,
                DELETE_ENDED_SESSIONS,
            ):
                await conn.execute(statement, (now,))
