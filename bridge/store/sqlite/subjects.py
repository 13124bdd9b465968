"""Everything of one subject at once, on SQLite: a subject's revocation in one transaction
(approvals and the access tokens tied to them, live deferrals, refresh tokens, the record of
its revoked access tokens, the audit entries), and the lookups by subject or token that
events and introspection make (records and rules: `store.contract.events`).

SQLite runs one writer at a time: a token tied to an approval, a deferral resolved or a
refresh token saved at the same moment is either written before the revocation (and revoked
by it) or after it (and then finds the approval revoked, the deferral final, or its family
revoked).
"""

from __future__ import annotations

import json
from dataclasses import fields

from ..contract.access_requests import ApprovalRecord
from ..contract.deferrals import DENIED, LIVE, PENDING, PING_KIND, DeferralRecord
from ..contract.events import SubjectRevocation, SubjectRevoked
from .approvals import REVOKE_APPROVAL, REVOKE_TIED_TOKENS, _approval_record
from .audit import AuditTables
from .connection import SQLiteBase, transaction
from .deferrals import _COLUMNS as DEFERRAL_COLUMNS
from .deferrals import _DROP_SECRETS, SELECT_LIVE_OF_TASK
from .outbox import OutboxTables

_APPROVAL_COLUMNS = ", ".join(f"a.{f.name}" for f in fields(ApprovalRecord))

# Each answered from an index (tests/store/test_plans.py).
SELECT_APPROVALS_OF_SUBJECT = (
    f"SELECT {_APPROVAL_COLUMNS} FROM access_requests t "
    "JOIN access_request_approvals a ON a.task_id = t.id "
    "WHERE t.subject_key = ? AND a.revoked_at IS NULL AND a.approved_until > ?"
)
SELECT_APPROVALS_OF_TOKEN = (
    f"SELECT {_APPROVAL_COLUMNS} FROM approval_tokens k "
    "JOIN access_request_approvals a ON a.id = k.approval_id WHERE k.jti = ?"
)
SELECT_TOKENS_OF_APPROVAL = "SELECT jti, expires_at FROM approval_tokens WHERE approval_id = ?"
SELECT_LIVE_DEFERRALS_OF_SUBJECT = (
    f"SELECT {DEFERRAL_COLUMNS} FROM deferrals WHERE subject_key = ? AND status IN (?, ?)"
)
DENY_DEFERRAL = (
    "UPDATE deferrals SET status = ?, resolution_json = COALESCE(?, resolution_json), "
    f"resolved_at = COALESCE(resolved_at, ?), {_DROP_SECRETS} WHERE code_hash = ? "
    "AND status = ?"
)
REVOKE_REFRESH_OF_SUBJECT = (
    "UPDATE refresh_tokens SET revoked_at = ? WHERE subject_key = ? AND revoked_at IS NULL"
)
RECORD_REVOKED_SUBJECT = (
    "INSERT INTO revoked_subjects (token_sub, revoked_until, keep_until) VALUES (?, ?, ?) "
    "ON CONFLICT (token_sub) DO UPDATE SET "
    "revoked_until = MAX(revoked_until, excluded.revoked_until), "
    "keep_until = MAX(keep_until, excluded.keep_until)"
)
SELECT_REVOKED_SUBJECT = "SELECT revoked_until FROM revoked_subjects WHERE token_sub = ?"
DELETE_OLD_SUBJECTS = "DELETE FROM revoked_subjects WHERE keep_until < ?"


class SubjectTables(SQLiteBase):
    async def subject_revoke(self, revocation: SubjectRevocation) -> SubjectRevoked:
        def work() -> SubjectRevoked:
            db = self.db
            now = revocation.at
            with transaction(db):
                approvals = [
                    _approval_record(row)
                    for row in db.execute(
                        SELECT_APPROVALS_OF_SUBJECT, (revocation.subject_key, now)
                    ).fetchall()
                ]
                audit = list(revocation.audit)
                for approval in approvals:
                    db.execute(REVOKE_APPROVAL, (now, approval.id))
                    db.execute(REVOKE_TIED_TOKENS, (approval.id,))
                    if revocation.approval_audit is not None:
                        audit.append(revocation.approval_audit(approval))
                deferrals = [
                    DeferralRecord(*row)
                    for row in db.execute(
                        SELECT_LIVE_DEFERRALS_OF_SUBJECT, (revocation.subject_key, *LIVE)
                    ).fetchall()
                ]
                pings = 0
                resolution = json.dumps(revocation.deferral_resolution)
                for record in deferrals:
                    pending = record.status == PENDING
                    queued = revocation.ping(record) if pending and revocation.ping else None
                    db.execute(
                        DENY_DEFERRAL,
                        (DENIED, resolution if pending else None, now, record.code_hash,
                         record.status),
                    )  # fmt: skip
                    if queued is not None:
                        OutboxTables.outbox_insert(db, PING_KIND, *queued)
                        pings += 1
                tasks = {r.task_id for r in deferrals if r.task_id is not None}
                orphaned = sorted(
                    t
                    for t in tasks
                    if db.execute(SELECT_LIVE_OF_TASK, (t, *LIVE)).fetchone() is None
                )
                refreshed = db.execute(
                    REVOKE_REFRESH_OF_SUBJECT, (now, revocation.subject_key)
                ).rowcount
                db.execute(
                    RECORD_REVOKED_SUBJECT, (revocation.token_sub, now, revocation.keep_until)
                )
                AuditTables.audit_write(db, audit)
            return SubjectRevoked(approvals, len(deferrals), refreshed, pings, orphaned)

        return await self._run(work)

    async def subject_revoked_until(self, token_sub: str) -> float | None:
        def work() -> float | None:
            row = self.db.execute(SELECT_REVOKED_SUBJECT, (token_sub,)).fetchone()
            return None if row is None else float(row[0])

        return await self._run(work)

    async def approvals_of_subject(self, subject_key: str, now: float) -> list[ApprovalRecord]:
        def work() -> list[ApprovalRecord]:
            rows = self.db.execute(SELECT_APPROVALS_OF_SUBJECT, (subject_key, now)).fetchall()
            return [_approval_record(row) for row in rows]

        return await self._run(work)

    async def approvals_of_token(self, jti: str) -> list[ApprovalRecord]:
        def work() -> list[ApprovalRecord]:
            rows = self.db.execute(SELECT_APPROVALS_OF_TOKEN, (jti,)).fetchall()
            return [_approval_record(row) for row in rows]

        return await self._run(work)

    async def approval_token_ids(self, approval_id: str) -> list[tuple[str, float]]:
        def work() -> list[tuple[str, float]]:
            rows = self.db.execute(SELECT_TOKENS_OF_APPROVAL, (approval_id,)).fetchall()
            return [(str(jti), float(expires)) for jti, expires in rows]

        return await self._run(work)

    async def subjects_purge(self, now: float) -> int:
        def work() -> int:
            with transaction(self.db):
                return self.db.execute(DELETE_OLD_SUBJECTS, (now,)).rowcount

        return await self._run(work)
