"""Records as rows, the same for both backends: for the tables whose columns are a record's
fields, the members that hold JSON are kept as the JSON text the store wrote, the others as
they are; and the audit trail's entries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from .contract.audit import AuditEntry


def row_of(record: Any, as_json: frozenset[str]) -> tuple[Any, ...]:
    """The values of `record`'s fields, in their order."""
    return tuple(
        json.dumps(value) if name in as_json and value is not None else value
        for name, value in ((f.name, getattr(record, f.name)) for f in fields(record))
    )


def fields_of(cls: type, row: Sequence[Any], as_json: frozenset[str]) -> dict[str, Any]:
    """The fields of a `cls` from its row (the columns in field order)."""
    return {
        f.name: json.loads(value) if f.name in as_json and value is not None else value
        for f, value in zip(fields(cls), row, strict=True)
    }


def audit_row(entry: AuditEntry) -> tuple[object, ...]:
    """An audit entry as its `audit_log` row (`data` as the JSON text its hash was made of
    the values of: read back, it parses to the same values)."""
    return (
        entry.seq,
        entry.at,
        entry.event,
        entry.task_id,
        entry.actor,
        json.dumps(entry.data),
        entry.prev_hash,
        entry.hash,
    )


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])
