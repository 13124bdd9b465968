"""The id of the request being served, for `X-Request-ID` on outgoing calls and in logs.

Whoever handles an incoming request sets `request_id_var`; code further down (a remote PDP
call, a log line) reads it without it having to be passed through every signature.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from .randomness import token_hex

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this task is serving, or None outside of one."""
    return request_id_var.get()


def new_request_id() -> str:
    """A fresh id: 32 random lowercase hex digits (`bridge.randomness`)."""
    return token_hex(16)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record ("-" outside a request), so a log line can be
    matched with the `X-Request-ID` a caller saw."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True
