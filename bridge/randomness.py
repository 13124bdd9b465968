"""Random values for ids and token identifiers, from the system's random source.

`secrets` makes one system call per value. On a hot path (every answer's `X-Request-ID`,
every access token's `jti`) that call is a measurable share of the request, so the bytes
are read 4 KiB at a time and handed out in order: the same source, as unpredictable, one
system call every few hundred values. A forked child starts with an empty pool, so that it
never hands out its parent's next values.
"""

from __future__ import annotations

import base64
import os
import threading


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
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_POOL = _RandomPool()
os.register_at_fork(after_in_child=_POOL.forget)


def token_hex(count: int) -> str:
    """`count` random bytes as lowercase hex digits (as `secrets.token_hex`)."""
    return _POOL.take(count).hex()


def token_urlsafe(count: int) -> str:
    """`count` random bytes as unpadded base64url (as `secrets.token_urlsafe`)."""
    return base64.urlsafe_b64encode(_POOL.take(count)).rstrip(b"=").decode("ascii")
