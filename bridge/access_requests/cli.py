"""`bridge approvals revoke ID` and `bridge audit verify|export`: what an operator does to
access requests from the command line, against the configured database.

The command line opens the store (`bridge.cli`) and hands it here; an operator revoking needs
no policy's leave, and the audit trail records the revocation as the operator's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from ..store.contract import AuditStore, TaskStore
from . import audit_events
from .audit_trail import export, verify
from .times import parse_rfc3339, rfc3339

COMMANDS = ("approvals", "audit")


class OperatorStore(TaskStore, AuditStore, Protocol):
    """What these commands use of the store."""


def register(commands: Any) -> None:
    approvals = commands.add_parser("approvals", help="granted approvals (operators)")
    actions = approvals.add_subparsers(dest="approvals_command", required=True)
    revoke = actions.add_parser("revoke", help="withdraw a granted approval now")
    revoke.add_argument("approval_id", help="the approval's id (apr_...)")
    revoke.add_argument("--reason", help="why, for the audit trail")
    revoke.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML configuration")

    audit = commands.add_parser("audit", help="the audit trail of access requests")
    steps = audit.add_subparsers(dest="audit_command", required=True)
    check = steps.add_parser("verify", help="check that no entry was edited, inserted or removed")
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML configuration")
    out = steps.add_parser("export", help="write the entries as JSON lines to standard output")
    out.add_argument("--since", help="only entries at or after this RFC 3339 date-time")
    out.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML configuration")
    for parser in (approvals, audit):
        parser.add_argument("--config", type=Path, help="TOML configuration")


def since_of(args: argparse.Namespace) -> tuple[bool, float | None]:
    """(valid, epoch seconds) of `--since`."""
    text = getattr(args, "since", None)
    if text is None:
        return True, None
    value = parse_rfc3339(text)
    return value is not None, value


async def run(args: argparse.Namespace, store: OperatorStore) -> int:
    if args.command == "approvals":
        return await _revoke(store, args.approval_id, args.reason)
    if args.audit_command == "verify":
        found = await verify(store)
        for problem in found.problems:
            print(problem, file=sys.stderr)
        if not found.intact:
            print(
                f"the audit trail is NOT intact: {len(found.problems)} problem(s)", file=sys.stderr
            )
            return 1
        head = found.head
        where = f", head {head.seq} {head.hash}" if head is not None else ""
        print(f"the audit trail is intact: {found.entries} entries{where}")
        return 0
    _, since = since_of(args)
    await export(store, sys.stdout, since=since)
    return 0


async def _revoke(store: OperatorStore, approval_id: str, reason: str | None) -> int:
    found = await store.approvals_get([approval_id])
    approval = found.get(approval_id)
    now = time.time()
    if approval is None:
        print(f"bridge approvals revoke: no approval {approval_id}", file=sys.stderr)
        return 1
    if approval.revoked_at is not None:
        print(f"bridge approvals revoke: {approval_id} was revoked already", file=sys.stderr)
        return 1
    event = audit_events.revoked(approval, audit_events.OPERATOR, reason, now)
    if not await store.approval_revoke(approval_id, now, [event]):
        print(f"bridge approvals revoke: {approval_id} was revoked already", file=sys.stderr)
        return 1
    ended = " (it had already ended)" if approval.approved_until <= now else ""
    print(
        f"approval {approval_id} of access request {approval.task_id} revoked{ended}; "
        f"it was granted until {rfc3339(approval.approved_until)}"
    )
    return 0
