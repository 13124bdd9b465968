"""The approvals access requests granted, and the access tokens issued under them, on SQLite
(records and rules: `store.contract.access_requests`).

A revocation and a token being tied to the approval it was issued under are each one
transaction, and SQLite runs one writer at a time: either the tie is written first (and the
revocation revokes the token with the approval), or the revocation is (and the tie finds the
approval revoked and revokes the token at once). A token never outlives its approval.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import fields

from ..columns import fields_of, row_of
from ..contract.access_requests import ApprovalRecord
from ..contract.audit import AuditEvent
from .audit import AuditTables
from .connection import SQLiteBase, transaction

_APPROVAL_JSON = frozenset({"members", "binding"})
_APPROVAL_COLUMNS = ", ".join(f.name for f in fields(ApprovalRecord))

INSERT_APPROVAL = (
    f"INSERT INTO access_request_approvals ({_APPROVAL_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(fields(ApprovalRecord)))})"
)
REVOKE_APPROVAL = (
    "UPDATE access_request_approvals SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
)
SELECT_LIVE_APPROVAL = "SELECT 1 FROM access_request_approvals WHERE id = ? AND revoked_at IS NULL"
# "Granted by me", newest first, from the partial index of approvals not revoked.
SELECT_GRANTED_BY = (
    f"SELECT {_APPROVAL_COLUMNS} FROM access_request_approvals WHERE approved_by = ? "
    "AND revoked_at IS NULL AND approved_until > ? ORDER BY approved_at DESC, id DESC LIMIT ?"
)
TIE_TOKEN = "INSERT OR IGNORE INTO approval_tokens (approval_id, jti, expires_at) VALUES (?, ?, ?)"
# The revoked access tokens table of `RevocationStore`, each kept as long as its token.
REVOKE_TOKEN = "INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)"
REVOKE_TIED_TOKENS = (
    "INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) "
    "SELECT jti, expires_at FROM approval_tokens WHERE approval_id = ?"
)
DELETE_EXPIRED_TIES = "DELETE FROM approval_tokens WHERE expires_at < ?"


class ApprovalTables(SQLiteBase):
    @staticmethod
    def approvals_insert(db: sqlite3.Connection, approvals: Sequence[ApprovalRecord]) -> None:
        """Record granted approvals; call inside the transaction of the decision."""
        db.executemany(INSERT_APPROVAL, [row_of(a, _APPROVAL_JSON) for a in approvals])

    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]:
        def work() -> dict[str, ApprovalRecord]:
            unique = list(dict.fromkeys(ids))
            marks = ", ".join("?" * len(unique))
            rows = self.db.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM access_request_approvals WHERE id IN ({marks})",
                unique,
            ).fetchall()
            return {row[0]: _approval_record(row) for row in rows}

        return {} if not ids else await self._run(work)

    async def approval_revoke(
        self, approval_id: str, now: float, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        def work() -> bool:
            with transaction(self.db):
                cursor = self.db.execute(REVOKE_APPROVAL, (now, approval_id))
                if cursor.rowcount != 1:
                    return False
                self.db.execute(REVOKE_TIED_TOKENS, (approval_id,))
                AuditTables.audit_write(self.db, audit)
            return True

        return await self._run(work)

    async def approvals_granted_by(
        self, approved_by: str, now: float, limit: int
    ) -> list[ApprovalRecord]:
        def work() -> list[ApprovalRecord]:
            rows = self.db.execute(SELECT_GRANTED_BY, (approved_by, now, limit)).fetchall()
            return [_approval_record(row) for row in rows]

        return await self._run(work)

    async def approval_tie_token(
        self, approval_ids: Sequence[str], jti: str, expires_at: float
    ) -> bool:
        def work() -> bool:
            unique = list(dict.fromkeys(approval_ids))
            with transaction(self.db):
                live = sum(
                    self.db.execute(SELECT_LIVE_APPROVAL, (approval_id,)).fetchone() is not None
                    for approval_id in unique
                )
                self.db.executemany(TIE_TOKEN, [(a, jti, expires_at) for a in unique])
                if live == len(unique):
                    return True
                # Issued under an approval revoked meanwhile (or purged): it goes at once.
                self.db.execute(REVOKE_TOKEN, (jti, expires_at))
            return False

        return await self._run(work)


def _approval_record(row: Sequence[object]) -> ApprovalRecord:
    return ApprovalRecord(**fields_of(ApprovalRecord, row, _APPROVAL_JSON))
