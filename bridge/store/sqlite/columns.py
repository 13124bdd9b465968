"""Records as rows, for the tables whose columns are a record's fields: the members that hold
JSON are kept as the JSON text the store wrote, the others as they are."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any


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
