"""The approvals access requests granted, and the access tokens issued under them, on
PostgreSQL (records and rules: `store.contract.access_requests`).

A token must never outlive its approval, whichever replicas tie and revoke at once. A tie
reads its approvals `FOR SHARE` (ties do not wait for each other), which conflicts with the
row lock of the revocation's `UPDATE`:
- the tie locks first: the revocation's `UPDATE` waits until the tie commits, and its next
  statement (a new snapshot, at read committed) finds the tie and revokes the token;
- the revocation locks first: the tie's read waits until it commits, then reads the row as
  the revocation left it (revoked), and revokes the token itself.
A tie locks its approvals in id order, a revocation locks one: they cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from ..columns import fields_of, row_of
from ..contract.access_requests import ApprovalRecord
from ..contract.audit import AuditEvent
from .audit import AuditTables
from .connection import Connection, PostgresBase

_APPROVAL_JSON = frozenset({"members", "binding"})
_APPROVAL_COLUMNS = ", ".join(f.name for f in fields(ApprovalRecord))

INSERT_APPROVAL = (
    f"INSERT INTO access_request_approvals ({_APPROVAL_COLUMNS}) "
    f"VALUES ({', '.join(['%s'] * len(fields(ApprovalRecord)))})"
)
REVOKE_APPROVAL = (
    "UPDATE access_request_approvals SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL"
)
# The approvals of a tie still in force, locked against a revocation until the tie commits.
LOCK_LIVE_APPROVALS = (
    "SELECT id FROM access_request_approvals WHERE id = ANY(%s) AND revoked_at IS NULL "
    "ORDER BY id FOR SHARE"
)
# "Granted by me", newest first, from the partial index of approvals not revoked.
SELECT_GRANTED_BY = (
    f"SELECT {_APPROVAL_COLUMNS} FROM access_request_approvals WHERE approved_by = %s "
    "AND revoked_at IS NULL AND approved_until > %s ORDER BY approved_at DESC, id DESC LIMIT %s"
)
TIE_TOKEN = (
    "INSERT INTO approval_tokens (approval_id, jti, expires_at) "
    "SELECT approval_id, %s, %s FROM unnest(%s::text[]) AS tied (approval_id) "
    "ON CONFLICT (approval_id, jti) DO NOTHING"
)
# The revoked access tokens table of `RevocationStore`, each kept as long as its token.
REVOKE_TOKEN = (
    "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (%s, %s) "
    "ON CONFLICT (jti) DO NOTHING"
)
REVOKE_TIED_TOKENS = (
    "INSERT INTO revoked_access_tokens (jti, expires_at) "
    "SELECT jti, expires_at FROM approval_tokens WHERE approval_id = %s "
    "ON CONFLICT (jti) DO NOTHING"
)
DELETE_EXPIRED_TIES = "DELETE FROM approval_tokens WHERE expires_at < %s"


class ApprovalTables(PostgresBase):
    @staticmethod
    async def approvals_insert(conn: Connection, approvals: Sequence[ApprovalRecord]) -> None:
        """Record granted approvals; call inside the transaction of the decision."""
        if approvals:
            async with conn.cursor() as many:
                await many.executemany(
                    INSERT_APPROVAL, [row_of(a, _APPROVAL_JSON) for a in approvals]
                )

    async def approvals_get(self, ids: Sequence[str]) -> dict[str, ApprovalRecord]:
        if not ids:
            return {}
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM access_request_approvals WHERE id = ANY(%s)",
                (list(dict.fromkeys(ids)),),
            )
            return {row[0]: _approval_record(row) for row in await cursor.fetchall()}

    async def approval_revoke(
        self, approval_id: str, now: float, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        async with self.transaction() as conn:
            cursor = await conn.execute(REVOKE_APPROVAL, (now, approval_id))
            if cursor.rowcount != 1:
                return False  # nothing was written: the transaction commits nothing
            await conn.execute(REVOKE_TIED_TOKENS, (approval_id,))
            await AuditTables.audit_write(conn, audit)
        return True

    async def approvals_granted_by(
        self, approved_by: str, now: float, limit: int
    ) -> list[ApprovalRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_GRANTED_BY, (approved_by, now, limit))
            return [_approval_record(row) for row in await cursor.fetchall()]

    async def approval_tie_token(
        self, approval_ids: Sequence[str], jti: str, expires_at: float
    ) -> bool:
        unique = list(dict.fromkeys(approval_ids))
        async with self.transaction() as conn:
            cursor = await conn.execute(LOCK_LIVE_APPROVALS, (unique,))
            live = len(await cursor.fetchall())
            await conn.execute(TIE_TOKEN, (jti, expires_at, unique))
            if live == len(unique):
                return True
            # Issued under an approval revoked meanwhile (or purged): it goes at once.
            await conn.execute(REVOKE_TOKEN, (jti, expires_at))
        return False


def _approval_record(row: Sequence[object]) -> ApprovalRecord:
    return ApprovalRecord(**fields_of(ApprovalRecord, row, _APPROVAL_JSON))
