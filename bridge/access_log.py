"""What the HTTP access log may show of a request: its path, and its query parameters' names
only. A value in a query string may be a secret sent by mistake (`?client_secret=...`); the
log keeps the evidence that it was sent, never the secret."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

REDACTED = "…"


def redact_query(target: str) -> str:
    """`path?a=1&b=2` → `path?a=…&b=…` (a query that does not parse is dropped whole)."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    try:
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True, errors="strict")]
    except (UnicodeDecodeError, ValueError):
        return f"{path}?{REDACTED}"
    return f"{path}?" + "&".join(f"{name}={REDACTED}" for name in names)


class RedactQueryValues(logging.Filter):
    """For uvicorn's access log, whose record arguments are (client, method, target,
    HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True
