"""The id of the request being served, for `X-Request-ID` on outgoing calls and in logs.

Whoever handles an incoming request sets `request_id_var`; code further down (a remote PDP
call, a log line) reads it without it having to be passed through every signature.
"""

from __future__ import annotations

import logging
import os
import threading
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this task is serving, or None outside of one."""
    return request_id_var.get()


def new_request_id() -> str:
    """A fresh id: 32 random lowercase hex digits (from the system's random source, as
    `secrets.token_hex` has them, but read 4 KiB at a time: one system call every 256 ids
    rather than one per request)."""
    return _POOL.take(16).hex()


class _RandomPool:
    _SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._at + count > len(self._bytes):
                self._bytes, self._at = os.urandom(self._SIZE), 0
            start, self._at = self._at, self._at + count
            return self._bytes[start : self._at]

    def forget(self) -> None:
        """After a fork: the child must not hand out the parent's next ids."""
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_POOL = _RandomPool()
os.register_at_fork(after_in_child=_POOL.forget)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record ("-" outside a request), so a log line can be
    matched with the `X-Request-ID` a caller saw."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True
