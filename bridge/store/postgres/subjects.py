"""Everything of one subject at once, on PostgreSQL: a subject's revocation in one
transaction, and the lookups by subject or token that events and introspection make (records
and rules: `store.contract.events`).

The revocation takes its locks in the order every other writer of these rows does, so it
waits rather than deadlocks: the approvals in force (`FOR UPDATE`, in id order: a tie reads
them `FOR SHARE` and then finds them revoked, or is found by the tied tokens' revocation),
the live deferrals (in code order, as a poll or a resolution locks one), each refresh token
family's advisory lock (as a rotation takes it: a token saved into a revoked family is saved
revoked), each access request's advisory lock (to tell which no deferral waits on), and the
audit trail's head last.
"""

from __future__ import annotations

import json
from dataclasses import fields

from ..contract.access_requests import ApprovalRecord
from ..contract.deferrals import DENIED, LIVE, PENDING, PING_KIND, DeferralRecord
from ..contract.events import SubjectRevocation, SubjectRevoked
from .approvals import REVOKE_APPROVAL, REVOKE_TIED_TOKENS, _approval_record
from .audit import AuditTables
from .connection import PostgresBase, lock_family, revoke_family
from .deferrals import _COLUMNS as DEFERRAL_COLUMNS
from .deferrals import _DROP_SECRETS, DeferralTables
from .outbox import OutboxTables

_APPROVAL_COLUMNS = ", ".join(f"a.{f.name}" for f in fields(ApprovalRecord))

# Each answered from an index (tests/store/test_plans.py).
SELECT_APPROVALS_OF_SUBJECT = (
    f"SELECT {_APPROVAL_COLUMNS} FROM access_requests t "
    "JOIN access_request_approvals a ON a.task_id = t.id "
    "WHERE t.subject_key = %s AND a.revoked_at IS NULL AND a.approved_until > %s"
)
LOCK_APPROVALS_OF_SUBJECT = SELECT_APPROVALS_OF_SUBJECT + " ORDER BY a.id FOR UPDATE OF a"
SELECT_APPROVALS_OF_TOKEN = (
    f"SELECT {_APPROVAL_COLUMNS} FROM approval_tokens k "
    "JOIN access_request_approvals a ON a.id = k.approval_id WHERE k.jti = %s"
)
SELECT_TOKENS_OF_APPROVAL = "SELECT jti, expires_at FROM approval_tokens WHERE approval_id = %s"
LOCK_LIVE_DEFERRALS_OF_SUBJECT = (
    f"SELECT {DEFERRAL_COLUMNS} FROM deferrals WHERE subject_key = %s AND status = ANY(%s) "
    "ORDER BY code_hash FOR UPDATE"
)
DENY_DEFERRAL = (
    "UPDATE deferrals SET status = %s, resolution_json = COALESCE(%s, resolution_json), "
    f"resolved_at = COALESCE(resolved_at, %s), {_DROP_SECRETS} WHERE code_hash = %s "
    "AND status = %s"
)
SELECT_FAMILIES_OF_SUBJECT = (
    "SELECT DISTINCT family_id FROM refresh_tokens WHERE subject_key = %s AND revoked_at IS NULL"
)
RECORD_REVOKED_SUBJECT = (
    "INSERT INTO revoked_subjects (token_sub, revoked_until, keep_until) VALUES (%s, %s, %s) "
    "ON CONFLICT (token_sub) DO UPDATE SET "
    "revoked_until = GREATEST(revoked_subjects.revoked_until, EXCLUDED.revoked_until), "
    "keep_until = GREATEST(revoked_subjects.keep_until, EXCLUDED.keep_until)"
)
SELECT_REVOKED_SUBJECT = "SELECT revoked_until FROM revoked_subjects WHERE token_sub = %s"
DELETE_OLD_SUBJECTS = "DELETE FROM revoked_subjects WHERE keep_until < %s"


class SubjectTables(PostgresBase):
    async def subject_revoke(self, revocation: SubjectRevocation) -> SubjectRevoked:
        now = revocation.at
        key = revocation.subject_key
        async with self.transaction() as conn:
            cursor = await conn.execute(LOCK_APPROVALS_OF_SUBJECT, (key, now))
            approvals = [_approval_record(row) for row in await cursor.fetchall()]
            audit = list(revocation.audit)
            for approval in approvals:
                await conn.execute(REVOKE_APPROVAL, (now, approval.id))
                await conn.execute(REVOKE_TIED_TOKENS, (approval.id,))
                if revocation.approval_audit is not None:
                    audit.append(revocation.approval_audit(approval))
            cursor = await conn.execute(LOCK_LIVE_DEFERRALS_OF_SUBJECT, (key, list(LIVE)))
            deferrals = [DeferralRecord(*row) for row in await cursor.fetchall()]
            pings = 0
            resolution = json.dumps(revocation.deferral_resolution)
            for record in deferrals:
                pending = record.status == PENDING
                queued = revocation.ping(record) if pending and revocation.ping else None
                await conn.execute(
                    DENY_DEFERRAL,
                    (DENIED, resolution if pending else None, now, record.code_hash,
                     record.status),
                )  # fmt: skip
                if queued is not None:
                    await OutboxTables.outbox_insert(conn, PING_KIND, *queued)
                    pings += 1
            orphaned = []
            for task_id in sorted({r.task_id for r in deferrals if r.task_id is not None}):
                if await DeferralTables._orphaned(conn, task_id) is not None:
                    orphaned.append(task_id)
            cursor = await conn.execute(SELECT_FAMILIES_OF_SUBJECT, (key,))
            refreshed = 0
            for (family,) in sorted(await cursor.fetchall()):
                await lock_family(conn, family)
                refreshed += await revoke_family(conn, family, now)
            await conn.execute(
                RECORD_REVOKED_SUBJECT, (revocation.token_sub, now, revocation.keep_until)
            )
            await AuditTables.audit_write(conn, audit)
        return SubjectRevoked(approvals, len(deferrals), refreshed, pings, orphaned)

    async def subject_revoked_until(self, token_sub: str) -> float | None:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_REVOKED_SUBJECT, (token_sub,))
            row = await cursor.fetchone()
        return None if row is None else float(row[0])

    async def approvals_of_subject(self, subject_key: str, now: float) -> list[ApprovalRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_APPROVALS_OF_SUBJECT, (subject_key, now))
            return [_approval_record(row) for row in await cursor.fetchall()]

    async def approvals_of_token(self, jti: str) -> list[ApprovalRecord]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_APPROVALS_OF_TOKEN, (jti,))
            return [_approval_record(row) for row in await cursor.fetchall()]

    async def approval_token_ids(self, approval_id: str) -> list[tuple[str, float]]:
        async with self.connection() as conn:
            cursor = await conn.execute(SELECT_TOKENS_OF_APPROVAL, (approval_id,))
            return [(str(jti), float(expires)) for jti, expires in await cursor.fetchall()]

    async def subjects_purge(self, now: float) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(DELETE_OLD_SUBJECTS, (now,))
        return cursor.rowcount
