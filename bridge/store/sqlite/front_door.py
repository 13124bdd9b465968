"""The front door's tables on SQLite (rows and rules: `store.contract.front_door`)."""

from __future__ import annotations

from ..contract.front_door import AuthorizationCodeRecord, AuthorizationRequestRecord, CodeUse
from .connection import SQLiteBase, transaction

_REQUEST_COLUMNS = (
    "id_hash, kind, client_id, parameters, created_at, expires_at, browser_hash, used_at"
)
_CODE_COLUMNS = (
    "code_hash, client_id, grant_json, issued_at, expires_at, used_at, reused_at, "
    "refresh_family_id, access_token_jti, access_token_expires_at"
)
# Housekeeping, each answered from an index (tests/store/test_plans.py).
DELETE_REQUESTS = "DELETE FROM authorization_requests WHERE expires_at < ?"
DELETE_CODES = "DELETE FROM authorization_codes WHERE expires_at < ?"
DELETE_LOGIN_WINDOWS = "DELETE FROM login_failures WHERE window_ends_at < ?"
DELETE_ENDED_SESSIONS = "DELETE FROM ended_sessions WHERE until < ?"


class FrontDoorTables(SQLiteBase):
    # -- authorization requests ------------------------------------------------------------

    async def save_authorization_request(self, record: AuthorizationRequestRecord) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    f"INSERT INTO authorization_requests ({_REQUEST_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

        await self._run(work)

    async def find_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        def work() -> AuthorizationRequestRecord | None:
            row = self.db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM authorization_requests "
                "WHERE id_hash = ? AND used_at IS NULL AND expires_at > ?",
                (id_hash, now),
            ).fetchone()
            return None if row is None else AuthorizationRequestRecord(*row)

        return await self._run(work)

    async def use_authorization_request(
        self, id_hash: str, now: float
    ) -> AuthorizationRequestRecord | None:
        def work() -> AuthorizationRequestRecord | None:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE authorization_requests SET used_at = ? "
                    "WHERE id_hash = ? AND used_at IS NULL AND expires_at > ?",
                    (now, id_hash, now),
                )
                if cursor.rowcount != 1:
                    return None
                row = self.db.execute(
                    f"SELECT {_REQUEST_COLUMNS} FROM authorization_requests WHERE id_hash = ?",
                    (id_hash,),
                ).fetchone()
            return AuthorizationRequestRecord(*row)

        return await self._run(work)

    # -- authorization codes -----------------------------------------------------------------

    async def save_authorization_code(self, record: AuthorizationCodeRecord) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "INSERT INTO authorization_codes "
                    "(code_hash, client_id, grant_json, issued_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        record.code_hash,
                        record.client_id,
                        record.grant,
                        record.issued_at,
                        record.expires_at,
                    ),
                )

        await self._run(work)

    async def use_authorization_code(
        self, code_hash: str, now: float
    ) -> tuple[AuthorizationCodeRecord, CodeUse] | None:
        def work() -> tuple[AuthorizationCodeRecord, CodeUse] | None:
            with transaction(self.db):
                first = self.db.execute(
                    "UPDATE authorization_codes SET used_at = ? "
                    "WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?",
                    (now, code_hash, now),
                ).rowcount
                use: CodeUse = "first"
                if first != 1:
                    again = self.db.execute(
                        "UPDATE authorization_codes SET reused_at = COALESCE(reused_at, ?) "
                        "WHERE code_hash = ? AND used_at IS NOT NULL",
                        (now, code_hash),
                    ).rowcount
                    if again != 1:
                        return None
                    use = "again"
                row = self.db.execute(
                    f"SELECT {_CODE_COLUMNS} FROM authorization_codes WHERE code_hash = ?",
                    (code_hash,),
                ).fetchone()
            return AuthorizationCodeRecord(*row), use

        return await self._run(work)

    async def record_code_tokens(
        self,
        code_hash: str,
        *,
        refresh_family_id: str | None,
        access_token_jti: str,
        access_token_expires_at: float,
    ) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(
                    "UPDATE authorization_codes SET refresh_family_id = ?, access_token_jti = ?, "
                    "access_token_expires_at = ? WHERE code_hash = ? AND reused_at IS NULL",
                    (refresh_family_id, access_token_jti, access_token_expires_at, code_hash),
                )
            return cursor.rowcount == 1

        return await self._run(work)

    # -- sign-in throttling ------------------------------------------------------------------

    async def login_failures(self, key: str, now: float) -> int:
        def work() -> int:
            row = self.db.execute(
                "SELECT failures FROM login_failures WHERE key = ? AND window_ends_at > ?",
                (key, now),
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._run(work)

    async def add_login_failure(self, key: str, now: float, window_seconds: float) -> int:
        def work() -> int:
            with transaction(self.db):
                row = self.db.execute(
                    "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?, 1, ?) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "failures = CASE WHEN window_ends_at > ? THEN failures + 1 ELSE 1 END, "
                    "window_ends_at = CASE WHEN window_ends_at > ? THEN window_ends_at "
                    "ELSE excluded.window_ends_at END "
                    "RETURNING failures",
                    (key, now + window_seconds, now, now),
                ).fetchone()
            return int(row[0])

        return await self._run(work)

    async def clear_login_failures(self, key: str) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute("DELETE FROM login_failures WHERE key = ?", (key,))

        await self._run(work)

    # -- ended sessions ----------------------------------------------------------------------

    async def end_session(self, session_hash: str, until: float) -> None:
        def work() -> None:
            with transaction(self.db):
                self.db.execute(
                    "INSERT INTO ended_sessions (session_hash, until) VALUES (?, ?) "
                    "ON CONFLICT (session_hash) DO NOTHING",
                    (session_hash, until),
                )

        await self._run(work)

    async def session_ended(self, session_hash: str, now: float) -> bool:
        def work() -> bool:
            row = self.db.execute(
                "SELECT 1 FROM ended_sessions WHERE session_hash = ? AND until > ?",
                (session_hash, now),
            ).fetchone()
            return row is not None

        return await self._run(work)

    async def purge_front_door(self, now: float) -> None:
        def work() -> None:
            with transaction(self.db):
                for statement in (
                    DELETE_REQUESTS,
                    DELETE_CODES,
                    DELETE_LOGIN_WINDOWS,
                    DELETE_ENDED_SESSIONS,
                ):
                    self.db.execute(statement, (now,))

        await self._run(work)
