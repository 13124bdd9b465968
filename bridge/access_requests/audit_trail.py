"""Reading the audit trail back: verifying its chain and exporting it as JSON lines.

Verification walks every entry in sequence order and checks, for each, that its hash is the
hash of its own members and of the previous entry's hash (an edit shows here), that its
`prev_hash` names the entry before it and its sequence number follows that entry's (an
insertion or a removal shows here), and finally that the last entry is the head the store
recorded with the last append (entries cut off the end show here).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..store.contract import AuditEntry, AuditHead, AuditStore, entry_hash
from ..store.contract.audit import GENESIS_HASH
from .times import rfc3339

_PAGE = 1000


@dataclass
class Verification:
    entries: int = 0
    head: AuditHead | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


async def entries(store: AuditStore, *, since: float | None = None) -> AsyncIterator[AuditEntry]:
    """Every entry (at or after `since`), in sequence order, read a page at a time."""
    after = 0
    while True:
        page = await store.audit_entries(after_seq=after, since=since, limit=_PAGE)
        for entry in page:
            yield entry
        if len(page) < _PAGE:
            return
        after = page[-1].seq


async def verify(store: AuditStore) -> Verification:
    found = Verification(head=await store.audit_head())
    previous_seq, previous_hash = 0, GENESIS_HASH
    async for entry in entries(store):
        found.entries += 1
        expected = entry_hash(
            entry.seq,
            entry.at,
            entry.event,
            entry.task_id,
            entry.actor,
            entry.data,
            entry.prev_hash,
        )
        if entry.hash != expected:
            found.problems.append(f"entry {entry.seq}: its hash does not match its contents")
        if entry.seq != previous_seq + 1:
            found.problems.append(
                f"entry {entry.seq} follows entry {previous_seq}: entries are missing"
            )
        if entry.prev_hash != previous_hash:
            found.problems.append(
                f"entry {entry.seq}: it does not name the hash of the entry before it"
            )
        previous_seq, previous_hash = entry.seq, entry.hash
    head = found.head
    if head is None and found.entries:
        found.problems.append("the store records no head, yet there are entries")
    elif head is not None and (head.seq, head.hash) != (previous_seq, previous_hash):
        found.problems.append(
            f"the recorded head is entry {head.seq}, the last entry is {previous_seq}: "
            "entries were removed from the end, or added outside the bridge"
        )
    return found


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as one export line: its members, with `time` in RFC 3339 beside `at`."""
    return {
        "seq": entry.seq,
        "at": entry.at,
        "time": rfc3339(entry.at),
        "event": entry.event,
        "task_id": entry.task_id,
        "actor": entry.actor,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


async def export(store: AuditStore, out: TextIO, *, since: float | None = None) -> int:
    """Write the entries (at or after `since`) as JSON lines; how many were written."""
    count = 0
    async for entry in entries(store, since=since):
        out.write(json.dumps(entry_json(entry), separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
