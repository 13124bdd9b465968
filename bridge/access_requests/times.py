"""RFC 3339 timestamps as ARAP writes them (UTC, `Z`, whole seconds) and reads them."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: object) -> float | None:
    """Epoch seconds, or None when `text` is not an RFC 3339 date-time with an offset."""
    if not isinstance(text, str) or "T" not in text.upper():
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
